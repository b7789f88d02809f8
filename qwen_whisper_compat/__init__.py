"""Qwen3-ASR behind the openai-whisper and faster-whisper interfaces.

Importing this package is cheap: onnxruntime, llama_cpp and every conversion dependency are imported
only by the modules that use them.
"""

from __future__ import annotations

from qwen_whisper_compat.errors import (
    AudioLoadError,
    ConversionError,
    ModelFolderError,
    QwenWhisperError,
)

__version__ = "0.1.0"

__all__ = [
    "AudioLoadError",
    "ConversionError",
    "ModelFolderError",
    "QwenWhisperError",
    "__version__",
]
