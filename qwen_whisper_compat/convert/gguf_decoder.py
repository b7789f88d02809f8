"""Qwen3 text decoder of a checkpoint -> GGUF file (llama.cpp architecture ``qwen3``), tokenizer inside.

Why ``qwen3`` and not ``qwen3vl`` (what the Qwen3-ASR-GGUF port and upstream llama.cpp use): the model's
interleaved M-RoPE receives the same position in all three streams for speech, which is numerically the
plain 1-D NeoX RoPE of ``qwen3``. One position per token keeps the embedding batches simple, and the
parity tests against the official model prove the equivalence.

The aligner's decoder is written without an output head: its 5000-class timestamp head is not a
vocabulary projection and is stored separately (``timestamp_head.npy``), never padded to the vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np

from qwen_whisper_compat.convert.checkpoint import Checkpoint
from qwen_whisper_compat.convert.tokenizer import TokenizerData
from qwen_whisper_compat.engine.manifest import SpecialTokens
from qwen_whisper_compat.engine.prompt import CHAT_TEMPLATE
from qwen_whisper_compat.errors import CheckpointError

ARCH = "qwen3"
_PREFIX = "thinker.model."
_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}

Progress = Callable[[str, int, int], None]


def tensor_plan(ckpt: Checkpoint, keep_head: bool = False) -> list[tuple[str, str]]:
    """(checkpoint name, GGUF name) of every decoder tensor, in writing order.

    Raises CheckpointError if a tensor is missing or the checkpoint has decoder tensors this converter
    does not know (a newer architecture would otherwise be converted into a silently broken model).
    """
    dims = ckpt.decoder_dims()
    plan = [(_PREFIX + "embed_tokens.weight", "token_embd.weight")]
    for i in range(dims.layers):
        for hf, gg in _LAYER_MAP.items():
            plan.append((f"{_PREFIX}layers.{i}.{hf}", f"blk.{i}.{gg}"))
    plan.append((_PREFIX + "norm.weight", "output_norm.weight"))
    if ckpt.kind == "asr" and (keep_head or not dims.tie_word_embeddings):
        head = "thinker.lm_head.weight"
        plan.append((head if ckpt.has(head) else _PREFIX + "embed_tokens.weight", "output.weight"))
    missing = [hf for hf, _ in plan if not ckpt.has(hf)]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(ckpt.path)!r} lacks {len(missing)} decoder tensor(s), e.g. {missing[0]!r}; "
            "the download is incomplete or this is not a Qwen3-ASR checkpoint"
        )
    known = {hf for hf, _ in plan} | {"thinker.lm_head.weight"}
    unknown = [n for n in ckpt.names() if n.startswith(_PREFIX) and n not in known]
    if unknown:
        raise CheckpointError(
            f"checkpoint has decoder tensors this converter does not know, e.g. {unknown[0]!r}; "
            "it is probably a newer architecture than qwen-whisper-compat supports"
        )
    return plan


def _gguf_array(arr: np.ndarray, dtype: str) -> np.ndarray:
    # llama.cpp keeps 1-D tensors (norm weights) in f32 whatever the file type.
    if arr.ndim == 1 or dtype == "f32":
        return np.ascontiguousarray(arr, dtype=np.float32)
    return np.ascontiguousarray(arr, dtype=np.float16)


def write_decoder_gguf(
    ckpt: Checkpoint,
    tok: TokenizerData,
    tokens: SpecialTokens,
    out_path: Path,
    dtype: str = "f16",
    progress: Progress | None = None,
    arch: str = ARCH,
) -> None:
    """Write the text decoder of ``ckpt`` as an f32 or f16 GGUF file at ``out_path``.

    Tensors are streamed one at a time, so memory stays near the size of the largest tensor. ``arch``
    ``"qwen3vl"`` writes the layout of the Qwen3-ASR-GGUF export scripts instead (M-RoPE sections, an
    explicit output head), which the runtime also reads.
    """
    if dtype not in ("f32", "f16"):
        raise ValueError(f"GGUF base type must be f32 or f16, got {dtype!r}")
    if arch not in (ARCH, "qwen3vl"):
        raise ValueError(f"unsupported GGUF architecture {arch!r}")
    dims = ckpt.decoder_dims()
    plan = tensor_plan(ckpt, keep_head=arch == "qwen3vl")
    w = gguf.GGUFWriter(out_path, arch=arch)
    w.add_name(ckpt.name)
    w.add_context_length(int(ckpt.text_config.get("max_position_embeddings", 65536)))
    w.add_embedding_length(dims.hidden)
    w.add_block_count(dims.layers)
    w.add_feed_forward_length(dims.intermediate)
    w.add_head_count(dims.heads)
    w.add_head_count_kv(dims.kv_heads)
    w.add_key_length(dims.head_dim)
    w.add_value_length(dims.head_dim)
    w.add_rope_freq_base(dims.rope_theta)
    w.add_layer_norm_rms_eps(dims.rms_norm_eps)
    if arch == "qwen3vl":
        sections = list((ckpt.text_config.get("rope_scaling") or {}).get("mrope_section", [24, 20, 20]))
        w.add_rope_dimension_sections([*sections, 0])
        w.add_num_deepstack_layers(0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tok.tokens)
    w.add_token_types(tok.types)
    w.add_token_merges(tok.merges)
    w.add_bos_token_id(tokens.endoftext)
    w.add_eos_token_id(tokens.im_end)
    w.add_pad_token_id(tokens.endoftext)
    w.add_add_bos_token(False)
    w.add_chat_template(CHAT_TEMPLATE)
    for hf, gg in plan:
        shape = ckpt.shape(hf)
        np_dtype = np.dtype(np.float32 if len(shape) == 1 or dtype == "f32" else np.float16)
        nbytes = int(np.prod(shape)) * np_dtype.itemsize
        w.add_tensor_info(gg, shape, np_dtype, nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for i, (hf, _) in enumerate(plan):
        w.write_tensor_data(_gguf_array(ckpt.tensor(hf), dtype))
        if progress is not None:
            progress("decoder", i + 1, len(plan))
    w.close()


def timestamp_head(ckpt: Checkpoint) -> np.ndarray:
    """The aligner's ``[classify_num, hidden]`` timestamp-classification head as float32."""
    dims = ckpt.decoder_dims()
    name = "thinker.lm_head.weight"
    if not ckpt.has(name):
        raise CheckpointError(f"aligner checkpoint {str(ckpt.path)!r} has no {name}")
    head = ckpt.tensor(name)
    if head.shape != (dims.classify_num, dims.hidden):
        raise CheckpointError(
            f"aligner head {name} has shape {head.shape}, expected ({dims.classify_num}, {dims.hidden})"
        )
    return head

