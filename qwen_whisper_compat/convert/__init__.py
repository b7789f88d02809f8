"""Official Hugging Face checkpoint -> model folder (ONNX encoder + GGUF decoder). Needs no torch.

Never imported at transcription time.
"""

from __future__ import annotations

from qwen_whisper_compat.convert.converter import convert_checkpoint

__all__ = ["convert_checkpoint"]
