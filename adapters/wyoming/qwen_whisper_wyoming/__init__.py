"""A Wyoming speech-to-text server for Home Assistant on qwen-whisper-compat.

``qwen-whisper-wyoming --model turbo`` listens on tcp://127.0.0.1:10300 and answers the Wyoming protocol's
``describe`` / ``transcribe`` / ``audio-*`` events as ``wyoming-faster-whisper`` does, transcribing with the
live engine while the audio arrives (:class:`~.handler.TranscribeHandler`). :class:`~.service.Service` holds
the one loaded model every connection shares.
"""

from __future__ import annotations

from qwen_whisper_wyoming.handler import TranscribeHandler
from qwen_whisper_wyoming.service import Busy, Service

__version__ = "0.1.0"

__all__ = ["Busy", "Service", "TranscribeHandler", "__version__"]
