"""Live transcription: a stream of audio in, partial and final segments out (see :mod:`.session`)."""

from qwen_whisper_compat.engine.live.session import LiveSession, LiveStats, SpeechDetector
from qwen_whisper_compat.engine.live.types import Final, LiveEvent, LiveOptions, Partial

__all__ = ["Final", "LiveEvent", "LiveOptions", "LiveSession", "LiveStats", "Partial", "SpeechDetector"]
