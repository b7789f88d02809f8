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


class UnknownModelError(ModelFolderError, ValueError):
    """A model name (or its precision suffix) is not one this package knows; the message lists the valid ones."""


class ModelNotAvailableError(ModelFolderError):
    """A model is neither in the cache nor downloadable now (offline, no network, download failed).

    The message names the checkpoint to download and the folder to put it in.
    """


class UnsupportedOptionError(QwenWhisperError, ValueError):
    """An option or value the engine cannot honour (translation, a language the model lacks, ...)."""


class SileroUnavailableError(QwenWhisperError, RuntimeError):
    """The Silero VAD session cannot be created (onnxruntime missing or broken, model file missing or damaged)."""
