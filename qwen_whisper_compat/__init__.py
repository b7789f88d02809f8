"""Qwen3-ASR behind the openai-whisper and faster-whisper interfaces.

``import qwen_whisper_compat as whisper`` gives whisper's names (``load_model``, ``transcribe``,
``load_audio``, ...); ``from qwen_whisper_compat import WhisperModel`` gives faster-whisper's.

Importing this package is cheap: onnxruntime, llama_cpp and every conversion dependency are imported
only when a model is loaded or converted.
"""

from __future__ import annotations

from qwen_whisper_compat import audio, tokenizer, utils
from qwen_whisper_compat.audio import decode_audio, load_audio, log_mel_spectrogram, pad_or_trim
from qwen_whisper_compat.decoding import DecodingOptions, DecodingResult, decode, detect_language
from qwen_whisper_compat.diarization import SpeakerTurn, diarize
from qwen_whisper_compat.errors import (
    AudioLoadError,
    CheckpointError,
    ConversionError,
    DecodingError,
    MissingDependencyError,
    ModelFolderError,
    ModelNotAvailableError,
    QwenWhisperError,
    SileroUnavailableError,
    UnknownModelError,
    UnsupportedOptionError,
)
from qwen_whisper_compat.faster import BatchedInferencePipeline, WhisperModel
from qwen_whisper_compat.model import ModelDimensions, Whisper, available_models, load_model
from qwen_whisper_compat.results import ResultDict, SegmentDict, WordDict
from qwen_whisper_compat.transcribe import transcribe

__version__ = "0.1.0"

__all__ = [
    "AudioLoadError",
    "BatchedInferencePipeline",
    "CheckpointError",
    "ConversionError",
    "DecodingError",
    "DecodingOptions",
    "DecodingResult",
    "MissingDependencyError",
    "ModelDimensions",
    "ModelFolderError",
    "ModelNotAvailableError",
    "QwenWhisperError",
    "ResultDict",
    "SegmentDict",
    "SileroUnavailableError",
    "SpeakerTurn",
    "UnknownModelError",
    "UnsupportedOptionError",
    "Whisper",
    "WhisperModel",
    "WordDict",
    "__version__",
    "audio",
    "available_models",
    "decode",
    "decode_audio",
    "detect_language",
    "diarize",
    "load_audio",
    "load_model",
    "log_mel_spectrogram",
    "pad_or_trim",
    "tokenizer",
    "transcribe",
    "utils",
]
