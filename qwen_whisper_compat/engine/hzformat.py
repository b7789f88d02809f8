"""Model folders written by the Qwen3-ASR-GGUF export scripts (github.com/HaujetZhao/Qwen3-ASR-GGUF).

Such a folder has no manifest; its files are named by convention::

    qwen3_asr_encoder_frontend.<p>.onnx   conv stem for one 100-frame chunk: chunk_mel [1,128,100] -> [1,13,d]
    qwen3_asr_encoder_backend.<p>.onnx    transformer: hidden_states [1,T,d] + additive attention_mask [1,1,T,T]
    qwen3_asr_llm.<p>.gguf                text decoder, llama.cpp arch "qwen3vl"
    (qwen3_aligner_* for the forced aligner)

A manifest is synthesised from what the files say (GGUF metadata) and from the released models' fixed
constants (token ids, 100-frame chunks, 8 s windows). Those files carry no checksums, so nothing is
hash-verified; the runtime checks the special tokens against the GGUF vocabulary when it loads.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from qwen_whisper_compat.engine.gguf_file import GGUFIndex
from qwen_whisper_compat.engine.languages import ALIGNER_LANGUAGES, ASR_LANGUAGES
from qwen_whisper_compat.engine.manifest import (
    DecoderDims,
    EncoderDims,
    Kind,
    Manifest,
    ModelFile,
    Role,
    SourceInfo,
    SpecialTokens,
)
from qwen_whisper_compat.errors import ModelFolderError

PREFIX: dict[Kind, str] = {"asr": "qwen3_asr", "aligner": "qwen3_aligner"}
#: Which variant to use when a folder holds several (CPU-first: full precision before quantized).
PREFERENCE = ("fp32", "f32", "int8", "q8_0", "f16", "fp16", "q6_k", "q5_k", "int4", "q4_k")

#: Ids of the released tokenizer's added tokens flagged special (reference/qwen3_asr.md 4.1).
RELEASED_SPECIAL_IDS = (
    *range(151643, 151657), *range(151669, 151675), 151676, *range(151677, 151704),
)  # fmt: skip
RELEASED_TOKENS = SpecialTokens(
    endoftext=151643, im_start=151644, im_end=151645, audio_start=151669, audio_end=151670,
    audio_pad=151676, asr_text=151704, eos=(151645, 151643), special=RELEASED_SPECIAL_IDS,
)  # fmt: skip


def _pick(folder: Path, pattern: str) -> tuple[str, str] | None:
    """(file name, precision) of the preferred file matching ``<pattern>.<precision>.<ext>``."""
    found: dict[str, str] = {}
    for p in folder.iterdir():
        m = re.fullmatch(pattern, p.name)
        if m and p.is_file():
            found[m.group(1).lower()] = p.name
    if not found:
        return None
    best = min(found, key=lambda prec: PREFERENCE.index(prec) if prec in PREFERENCE else len(PREFERENCE))
    return found[best], best


def hz_manifest(folder: Path, kind: Kind | None) -> Manifest | None:
    """A manifest for a Qwen3-ASR-GGUF export folder, or ``None`` if ``folder`` is not one."""
    kinds: tuple[Kind, ...] = (kind,) if kind else ("asr", "aligner")
    for k in kinds:
        prefix = PREFIX[k]
        picked: dict[Role, tuple[str, str] | None] = {
            "encoder_frontend": _pick(folder, rf"{prefix}_encoder_frontend\.([A-Za-z0-9_]+)\.onnx"),
            "encoder_backend": _pick(folder, rf"{prefix}_encoder_backend\.([A-Za-z0-9_]+)\.onnx"),
            "decoder": _pick(folder, rf"{prefix}_llm\.([A-Za-z0-9_]+)\.gguf"),
        }
        if any(v is None for v in picked.values()):
            continue
        files = tuple(
            ModelFile(role=role, path=name, precision=prec, size=(folder / name).stat().st_size, sha256="")
            for role, (name, prec) in ((r, v) for r, v in picked.items() if v is not None)
        )
        index = GGUFIndex(folder / files[-1].path)
        try:
            decoder = _decoder_dims(index, k)
        finally:
            index.close()
        encoder = EncoderDims(
            n_mels=128, d_model=0, layers=0, heads=0, ffn_dim=0, conv_channels=480,
            output_dim=decoder.hidden, n_window=50, n_window_infer=800,
        )  # fmt: skip
        return Manifest(
            kind=k,
            converter_version="Qwen3-ASR-GGUF export",
            source=SourceInfo(name=folder.name, model_type="qwen3-asr-gguf", files={}),
            encoder=encoder,
            decoder=decoder,
            tokens=RELEASED_TOKENS if k == "asr" else _aligner_tokens(),
            languages=ASR_LANGUAGES if k == "asr" else ALIGNER_LANGUAGES,
            files=files,
            timestamp_segment_ms=80 if k == "aligner" else None,
        )
    return None


def _aligner_tokens() -> SpecialTokens:
    t = RELEASED_TOKENS
    return SpecialTokens(
        endoftext=t.endoftext, im_start=t.im_start, im_end=t.im_end, audio_start=t.audio_start,
        audio_end=t.audio_end, audio_pad=t.audio_pad, asr_text=t.asr_text, eos=t.eos, timestamp=151705,
        special=t.special,
    )  # fmt: skip


def _decoder_dims(index: GGUFIndex, kind: Kind) -> DecoderDims:
    meta: dict[str, Any] = index.metadata
    arch = str(meta.get("general.architecture", ""))

    def get(key: str, default: Any = None) -> Any:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ModelFolderError(f"{index.path} lacks the GGUF key {arch}.{key}; is it a Qwen3-ASR decoder?")
        return value

    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    return DecoderDims(
        hidden=hidden,
        layers=int(get("block_count")),
        heads=heads,
        kv_heads=int(get("attention.head_count_kv", heads)),
        head_dim=int(get("attention.key_length", hidden // heads)),
        intermediate=int(get("feed_forward_length", 0)),
        vocab_size=int(index.tensors["token_embd.weight"].shape[1]),
        rope_theta=float(get("rope.freq_base", 1e6)),
        rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-6)),
        tie_word_embeddings="output.weight" not in index.tensors,
        classify_num=5000 if kind == "aligner" else 0,
    )
