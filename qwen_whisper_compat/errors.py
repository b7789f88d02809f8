"""The exception hierarchy. Every error a user can cause is one of these, with a message that says what to do.

Leaves also subclass the matching builtin so that callers written for whisper (``except RuntimeError``,
``except ValueError``) keep working.
"""

from __future__ import annotations


class QwenWhisperError(Exception):
    """Base class of every error raised on purpose by qwen_whisper_compat."""


class ModelFolderError(QwenWhisperError, RuntimeError):
    """A model folder is missing, incomplete, corrupted or of the wrong kind."""


class ConversionError(QwenWhisperError, RuntimeError):
    """A checkpoint could not be converted into a model folder."""


class CheckpointError(ConversionError, ValueError):
    """The source checkpoint folder is missing files, truncated, or not a Qwen3-ASR checkpoint."""


class AudioLoadError(QwenWhisperError, RuntimeError):
    """Audio could not be read or decoded."""
