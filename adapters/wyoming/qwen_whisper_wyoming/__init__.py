"""A Wyoming speech-to-text server for Home Assistant on qwen-whisper-compat.

``qwen-whisper-wyoming --model turbo`` listens on tcp://127.0.0.1:10300 and answers the Wyoming protocol's
``describe`` / ``transcribe`` / ``audio-*`` events as ``wyoming-faster-whisper`` does, transcribing with the
live engine while the audio arrives (:class:`~.handler.TranscribeHandler`). :class:`~.service.Service` holds
the one model every connection shares (loading behind the listening server, then loaded).
"""

from __future__ import annotations

from qwen_whisper_wyoming.handler import TranscribeHandler
from qwen_whisper_wyoming.service import Service, Settings

__version__ = "0.1.0"

__all__ = ["Service", "Settings", "TranscribeHandler", "__version__"]
