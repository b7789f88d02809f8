"""The exception hierarchy. Every error a user can cause is one of these, with a message that says what to do.

Leaves also subclass the matching builtin so that callers written for whisper (``except RuntimeError``,
``except ValueError``, ``except ImportError``) keep working::

    QwenWhisperError
    ├── ModelFolderError (RuntimeError)        a model folder is missing, broken or of the wrong kind
    │   ├── UnknownModelError (ValueError)     a model name this package does not know
    │   └── ModelNotAvailableError             not cached and cannot be downloaded now
    ├── ConversionError (RuntimeError)         a checkpoint could not be converted
    │   └── CheckpointError (ValueError)       the checkpoint itself is broken or not Qwen3-ASR
    ├── AudioLoadError (RuntimeError)          audio that cannot be read or used
    ├── UnsupportedOptionError (ValueError)    an option or value the engine cannot honour
    ├── DecodingError (RuntimeError)           llama.cpp failed while decoding, or the model was closed
    ├── MissingDependencyError (ImportError)   an optional package a feature needs is not installed
    ├── SileroUnavailableError (RuntimeError)  the Silero VAD session cannot be created
    └── BatchError (RuntimeError)              a batch job cannot start or go on (its folder, its cluster)

This module imports nothing.
"""

from __future__ import annotations


class QwenWhisperError(Exception):
    """Base class of every error raised on purpose by qwen_whisper_compat."""


class ModelFolderError(QwenWhisperError, RuntimeError):
    """A model folder is missing, incomplete, corrupted or of the wrong kind."""


class UnknownModelError(ModelFolderError, ValueError):
    """A model name (or its precision suffix) is not one this package knows; the message lists the valid ones."""


class ModelNotAvailableError(ModelFolderError):
    """A model is neither in the cache nor downloadable now (offline, no network, download failed).

    The message names the checkpoint to download and the folder to put it in.
    """


class ConversionError(QwenWhisperError, RuntimeError):
    """A checkpoint could not be converted into a model folder."""


class CheckpointError(ConversionError, ValueError):
    """The source checkpoint folder is missing files, truncated, or not a Qwen3-ASR checkpoint."""


class AudioLoadError(QwenWhisperError, RuntimeError):
    """Audio could not be read or decoded (a missing file, a folder, an unknown format, a bad array)."""


class UnsupportedOptionError(QwenWhisperError, ValueError):
    """An option or value the engine cannot honour (translation, a language the model lacks, ...)."""


class DecodingError(QwenWhisperError, RuntimeError):
    """llama.cpp could not decode (its log, logger ``qwen_whisper_compat.llama``, says why), or the model
    was used after ``close()``."""


class MissingDependencyError(QwenWhisperError, ImportError):
    """A feature needs an optional package that is not installed; the message says what to ``pip install``."""


class SileroUnavailableError(QwenWhisperError, RuntimeError):
    """The Silero VAD session cannot be created (onnxruntime missing or broken, model file missing or damaged)."""


class BatchError(QwenWhisperError, RuntimeError):
    """A batch job cannot start or go on: its output folder is unusable or taken by another job, no input was
    given, or the Ray cluster cannot be reached. (One input that fails is a ``failed`` row, not this.)"""


__all__ = [
    "AudioLoadError",
    "BatchError",
    "CheckpointError",
    "ConversionError",
    "DecodingError",
    "MissingDependencyError",
    "ModelFolderError",
    "ModelNotAvailableError",
    "QwenWhisperError",
    "SileroUnavailableError",
    "UnknownModelError",
    "UnsupportedOptionError",
]
