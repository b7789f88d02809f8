"""Quantizing a GGUF decoder with llama.cpp's own quantizer (used by the converter, never at run time)."""

from __future__ import annotations

import ctypes
from pathlib import Path

from qwen_whisper_compat.engine.llama_runtime import default_threads, llama
from qwen_whisper_compat.errors import ConversionError

#: Our precision names -> llama.cpp file types (``q4_k`` is llama.cpp's Q4_K_M mix).
QUANT_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


def quantize_gguf(src: Path, dst: Path, precision: str, threads: int = 0) -> None:
    """Quantize an f16/f32 GGUF file with llama.cpp's own quantizer.

    Tensors whose rows do not fit the k-quant block (256) fall back to a compatible type, as
    ``llama-quantize`` does.

    Raises:
        ValueError: ``precision`` is not one of :data:`QUANT_TYPES`.
        ConversionError: llama.cpp failed (its log says why).
    """
    if precision not in QUANT_TYPES:
        raise ValueError(f"unknown GGUF quantization {precision!r}; expected one of {sorted(QUANT_TYPES)}")
    quantize_as(src, dst, QUANT_TYPES[precision], precision, threads)


def quantize_as(src: Path, dst: Path, ftype: str, name: str, threads: int = 0, output_type: str | None = None) -> None:
    """Quantize to any llama.cpp file type, ``ftype`` being its ``LLAMA_FTYPE_*`` name (the benchmarks also try
    types the converter does not offer); ``name`` is what an error calls it. ``output_type`` (a ``GGML_TYPE_*``
    name) sets the vocabulary head's type apart (with tied embeddings, as Qwen3-ASR's, the embedding table, which
    is the head).

    Raises:
        ConversionError: llama.cpp failed (its log says why).
    """
    lib = llama()
    params = lib.llama_model_quantize_default_params()
    params.ftype = getattr(lib, ftype)
    if output_type is not None:
        params.output_tensor_type = getattr(lib, output_type)
    params.nthread = threads or default_threads()
    rc = lib.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise ConversionError(f"llama.cpp failed to quantize {src.name} to {name} (code {rc}); see the log")
