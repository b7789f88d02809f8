"""Checkpoint folder -> model folder, atomically: all files are written into a hidden temporary folder
next to the destination, which is renamed into place only when complete. A failed or interrupted
conversion leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from qwen_whisper_compat import __version__
from qwen_whisper_compat.convert.checkpoint import Checkpoint
from qwen_whisper_compat.convert.gguf_decoder import timestamp_head, write_decoder_gguf
from qwen_whisper_compat.convert.onnx_aligner import FLOAT_MATMULS, build_aligner_graph
from qwen_whisper_compat.convert.onnx_encoder import build_encoder_graph
from qwen_whisper_compat.convert.onnx_graph import save_model
from qwen_whisper_compat.convert.quantize import CONVERTERS, to_int8
from qwen_whisper_compat.convert.tokenizer import read_tokenizer
from qwen_whisper_compat.engine.manifest import (
    ALIGNER_GRAPH_PRECISIONS,
    DECODER_PRECISIONS,
    ENCODER_PRECISIONS,
    Manifest,
    ModelFile,
    SourceInfo,
)
from qwen_whisper_compat.engine.modeldir import ModelDir, describe_file, load_model_dir, write_manifest
from qwen_whisper_compat.errors import ConversionError, QwenWhisperError

logger = logging.getLogger("qwen_whisper_compat.convert")

#: (stage, done, total): called as long steps advance.
Progress = Callable[[str, int, int], None]

DEFAULT_ENCODER = "fp32"
DEFAULT_DECODER = "q8_0"
#: The aligner's onnxruntime decoder graph (benchmarks/aligner_fidelity.py).
DEFAULT_ALIGNER_GRAPH = "int8"


def convert_checkpoint(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    encoder: str = DEFAULT_ENCODER,
    decoder: str = DEFAULT_DECODER,
    overwrite: bool = False,
    threads: int = 0,
    progress: Progress | None = None,
    aligner_graph: str = DEFAULT_ALIGNER_GRAPH,
) -> ModelDir:
    """Convert an official Qwen3-ASR / Qwen3-ForcedAligner checkpoint folder into a model folder.

    Args:
        src: The checkpoint folder (config.json, safetensors, tokenizer files).
        out: The model folder to create.
        encoder: Encoder precision, one of ``fp32 fp16 int8 int4``.
        decoder: Decoder precision, one of ``f32 f16 q8_0 q4_k``.
        overwrite: Replace ``out`` if it already exists.
        threads: Threads for GGUF quantization (0 = all CPUs).
        progress: Optional progress callback.
        aligner_graph: For an aligner, the precision of its decoder as an onnxruntime graph, one of
            ``int8 fp32 none`` (``none``: the aligner runs its decoder in llama.cpp only).

    Returns:
        The new, validated model folder.

    Raises:
        CheckpointError: ``src`` is not a usable checkpoint.
        ConversionError: ``out`` cannot be written, or a conversion step failed.
    """
    if encoder not in ENCODER_PRECISIONS:
        raise ConversionError(f"unknown encoder precision {encoder!r}; choose one of {', '.join(ENCODER_PRECISIONS)}")
    if decoder not in DECODER_PRECISIONS:
        raise ConversionError(f"unknown decoder precision {decoder!r}; choose one of {', '.join(DECODER_PRECISIONS)}")
    if aligner_graph not in ALIGNER_GRAPH_PRECISIONS:
        raise ConversionError(
            f"unknown aligner graph precision {aligner_graph!r}; choose one of {', '.join(ALIGNER_GRAPH_PRECISIONS)}"
        )
    ckpt = Checkpoint(src)
    dest = Path(out).absolute()
    if dest.exists() and not overwrite:
        raise ConversionError(f"{str(dest)!r} already exists; choose another output folder or pass --force")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()  # not mkdtemp: the finished folder should get the umask's permissions, not 0700
    except OSError as e:
        raise ConversionError(f"cannot write to {str(dest)!r}: {e.strerror or e}") from e
    try:
        manifest = _convert_into(ckpt, tmp, encoder, decoder, threads, progress)
        if ckpt.kind == "aligner" and aligner_graph != "none":
            graph = _write_aligner_graph(ckpt, tmp, aligner_graph, progress)
            manifest = dataclasses.replace(manifest, files=(*manifest.files, graph))
        write_manifest(tmp, manifest)
        _move_into_place(tmp, dest)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, QwenWhisperError) or not isinstance(e, Exception):
            raise  # our own errors, KeyboardInterrupt, SystemExit
        if isinstance(e, OSError):
            raise ConversionError(f"conversion failed while writing {str(dest)!r}: {e.strerror or e}") from e
        raise ConversionError(f"conversion of {str(ckpt.path)!r} failed: {type(e).__name__}: {e}") from e
    logger.info("converted %s -> %s (encoder %s, decoder %s)", ckpt.path, dest, encoder, decoder)
    return load_model_dir(dest, verify_hashes=False)


def _convert_into(
    ckpt: Checkpoint, tmp: Path, encoder: str, decoder: str, threads: int, progress: Progress | None
) -> Manifest:
    dec_dims = ckpt.decoder_dims()
    tok = read_tokenizer(ckpt.path, dec_dims.vocab_size)
    tokens = ckpt.special_tokens(tok.vocab, tok.special_ids)
    files: list[ModelFile] = []

    logger.info("building the ONNX audio encoder")
    fp32_name = "encoder.fp32.onnx"
    save_model(build_encoder_graph(ckpt, progress), tmp / fp32_name)
    enc_name = f"encoder.{encoder}.onnx"
    if encoder != "fp32":
        logger.info("converting the encoder to %s", encoder)
        CONVERTERS[encoder](tmp / fp32_name, tmp / enc_name)
        (tmp / fp32_name).unlink()
    files.append(describe_file(tmp, "encoder", enc_name, encoder))

    logger.info("writing the GGUF text decoder")
    base = "f32" if decoder == "f32" else "f16"
    base_name = f"decoder.{base}.gguf"
    write_decoder_gguf(ckpt, tok, tokens, tmp / base_name, base, progress)
    dec_name = f"decoder.{decoder}.gguf"
    if decoder not in ("f32", "f16"):
        from qwen_whisper_compat.engine.llama_quantize import quantize_gguf

        logger.info("quantizing the decoder to %s", decoder)
        if progress is not None:
            progress("quantize", 0, 1)
        quantize_gguf(tmp / base_name, tmp / dec_name, decoder, threads)
        (tmp / base_name).unlink()
        if progress is not None:
            progress("quantize", 1, 1)
    files.append(describe_file(tmp, "decoder", dec_name, decoder))

    if ckpt.kind == "aligner":
        np.save(tmp / "timestamp_head.npy", timestamp_head(ckpt))
        files.append(describe_file(tmp, "timestamp_head", "timestamp_head.npy", "fp32"))

    logger.info("hashing the source weights")
    return Manifest(
        kind=ckpt.kind,
        converter_version=__version__,
        source=SourceInfo(
            name=ckpt.name,
            model_type=str(ckpt.config["thinker_config"].get("model_type", ckpt.config["model_type"])),
            files=dict(ckpt.source_hashes()),
        ),
        encoder=ckpt.encoder_dims(),
        decoder=dec_dims,
        tokens=tokens,
        languages=ckpt.languages(),
        files=tuple(files),
        timestamp_segment_ms=ckpt.timestamp_segment_ms(),
    )


def _write_aligner_graph(ckpt: Checkpoint, tmp: Path, precision: str, progress: Progress | None) -> ModelFile:
    logger.info("building the aligner's onnxruntime decoder graph")
    fp32_name = "aligner_decoder.fp32.onnx"
    save_model(build_aligner_graph(ckpt, progress), tmp / fp32_name)
    name = f"aligner_decoder.{precision}.onnx"
    if precision == "int8":
        logger.info("converting the aligner graph to int8")
        to_int8(tmp / fp32_name, tmp / name, exclude=FLOAT_MATMULS)
        (tmp / fp32_name).unlink()
    return describe_file(tmp, "aligner_decoder", name, precision)


def _move_into_place(tmp: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(tmp, dest)
        return
    # --force: swap the old folder out first so that a crash never leaves a half-replaced folder
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.replace(dest, old / dest.name)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)
