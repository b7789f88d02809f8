"""The forced aligner's text decoder and timestamp head -> one ONNX graph, built node by node.

Graph: ``inputs_embeds`` float32 ``[L, hidden]`` (the prompt rows: token embeddings with the audio rows in
place) and ``slots`` int64 ``[S]`` (the rows of the ``<timestamp>`` tokens) -> ``timestamp_logits`` float32
``[S, classify_num]``.

The aligner only prefills (reference/qwen3_asr.md 5.1): one causal pass over positions 0..L-1 and the head
read at the slots, so neither a KV cache nor the vocabulary head is needed. The layers are the Qwen3 blocks of
reference/qwen3_asr.md 3.2: RMSNorm, q/k/v projections, per-head RMSNorm of q and k, NeoX RoPE (theta from the
config, plain 1-D positions), causal grouped-query attention, o_proj, residual, RMSNorm, SiLU-gated MLP,
residual; then the final norm and the 5000-class head.

Choices, each for speed on CPU without changing the result:

* q, k and v are one MatMul, gate and up another (per output channel int8 scales are the same either way, and
  the dynamic quantizer then quantizes each activation once instead of three or two times);
* the softmax scale is folded into the q_norm weight (RoPE is linear);
* the last layer computes its query, MLP and everything after only at the slot rows (its keys and values still
  cover every row);
* RMSNorm is written as the primitive pattern onnxruntime fuses into ``SimplifiedLayerNormalization``.

The token-embedding table is not in the graph: the runtime reads the prompt's few text rows from the
decoder GGUF, which the folder keeps for the tokenizer (memory-mapped; see engine/aligner_onnx.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from qwen_whisper_compat.convert.checkpoint import Checkpoint
from qwen_whisper_compat.convert.onnx_graph import GraphBuilder
from qwen_whisper_compat.engine.aligner_onnx import EMBEDS_NAME, LOGITS_NAME, SLOTS_NAME
from qwen_whisper_compat.errors import CheckpointError

OPSET = 17
_P = "thinker.model."

Progress = Callable[[str, int, int], None]

#: Names of the graph's MatMuls that stay float32 in the int8 variant (the head is small and read at a
#: few rows; the attention products have no constant weights).
FLOAT_MATMULS = ("timestamp_head",)


def _rms_norm(g: GraphBuilder, x: str, weight: np.ndarray, eps: float, name: str) -> str:
    """``x / sqrt(mean(x^2, -1) + eps) * weight`` in the pattern onnxruntime fuses."""
    sq = g.op("Pow", x, g.const_f32(2.0))
    mean = g.op("ReduceMean", sq, axes=[-1], keepdims=1)
    root = g.op("Sqrt", g.op("Add", mean, g.const_f32(eps)))
    return g.op("Mul", g.op("Div", x, root), g.init(name + ".weight", weight.astype(np.float32)), hint=name)


def _rope(g: GraphBuilder, x: str, cos: str, sin: str, half: int) -> str:
    """NeoX rotation of ``x`` ``[rows, heads, head_dim]``: ``x * cos + concat(x2, x1) * sin_signed`` where
    ``sin_signed = concat(-sin, sin)`` (the table already holds the signs)."""
    x1, x2 = g.split(x, [half, half])
    swapped = g.op("Concat", x2, x1, axis=-1)
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", swapped, sin))


def _fused_attention(
    g: GraphBuilder, q: str, k: str, v: str, lengths: tuple[str, str], heads: int, kv_heads: int, hd: int, name: str
) -> str:
    """Causal grouped-query attention of every row in onnxruntime's ``GroupQueryAttention`` (com.microsoft):
    q ``[L, heads, hd]`` and k ``[L, kv_heads, hd]`` after RoPE (scale already in q), v ``[L, kv_heads * hd]``;
    returns ``[L, heads * hd]``."""
    q3, k3, v3 = (
        g.op("Reshape", x, g.const_i64([1, -1, n * hd])) for x, n in ((q, heads), (k, kv_heads), (v, kv_heads))
    )
    out = name + ".gqa"
    node = helper.make_node(
        "GroupQueryAttention",
        [q3, k3, v3, "", "", lengths[0], lengths[1]],
        [out, out + "_present_k", out + "_present_v"],
        name=out,
        domain="com.microsoft",
        num_heads=heads,
        kv_num_heads=kv_heads,
        scale=1.0,
    )
    g.nodes.append(node)
    return g.op("Squeeze", out, g.const_i64([0]))


def build_aligner_graph(
    ckpt: Checkpoint, progress: Progress | None = None, fused_attention: bool = False
) -> onnx.ModelProto:
    """Build the fp32 ONNX graph of ``ckpt``'s aligner decoder and timestamp head (``fused_attention``: every
    layer but the last attends in onnxruntime's GroupQueryAttention contrib op)."""
    if ckpt.kind != "aligner":
        raise CheckpointError(f"{ckpt.path} is not a forced-aligner checkpoint")
    d = ckpt.decoder_dims()
    if d.heads % d.kv_heads or d.head_dim % 2:
        raise CheckpointError(f"unsupported attention shape: {d.heads} heads, {d.kv_heads} kv heads, {d.head_dim}")
    t = ckpt.tensor
    g = GraphBuilder()
    hd, nh, nkv, half = d.head_dim, d.heads, d.kv_heads, d.head_dim // 2
    group = nh // nkv
    eps = d.rms_norm_eps

    # ---- positions and RoPE tables: cos/sin [L, 1, hd] for every row ------------------------------------
    n_rows = g.scalar(EMBEDS_NAME, 0)
    pos = g.op("Range", g.const_i64(0), n_rows, g.const_i64(1), hint="positions")
    inv_freq = 1.0 / (d.rope_theta ** (np.arange(0, hd, 2, dtype=np.int64).astype(np.float32) / hd))
    freqs = g.op(
        "Mul",
        g.op("Unsqueeze", g.op("Cast", pos, to=TensorProto.FLOAT), g.const_i64([1])),
        g.init("rope.inv_freq", inv_freq.astype(np.float32)[None, :]),
    )
    cos_half, sin_half = g.op("Cos", freqs), g.op("Sin", freqs)
    cos = g.op("Unsqueeze", g.op("Concat", cos_half, cos_half, axis=-1), g.const_i64([1]), hint="rope_cos")
    sin = g.op("Unsqueeze", g.op("Concat", g.op("Neg", sin_half), sin_half, axis=-1), g.const_i64([1]), hint="rope_sin")

    def causal_mask(query_pos: str) -> str:
        later = g.op(
            "Greater", g.op("Unsqueeze", pos, g.const_i64([0])), g.op("Unsqueeze", query_pos, g.const_i64([1]))
        )
        return g.op("Where", later, g.const_f32(float("-inf")), g.const_f32(0.0), hint="causal_mask")

    mask_all = causal_mask(pos)
    # GroupQueryAttention's lengths: the last key index per batch row (int32 [1]) and the total length (scalar)
    n32 = g.op("Cast", n_rows, to=TensorProto.INT32)
    lengths = (g.op("Reshape", g.op("Sub", n32, g.init("one_i32", np.array(1, np.int32))), g.const_i64([1])), n32)
    q_heads = g.const_i64([0, nkv, group, hd])  # [rows, kv, group, hd]
    kv_heads = g.const_i64([0, nkv, hd])
    flat = g.const_i64([0, nh * hd])
    x = EMBEDS_NAME
    for i in range(d.layers):
        p = f"{_P}layers.{i}."
        name = f"layers.{i}"
        last = i == d.layers - 1
        h = _rms_norm(g, x, t(p + "input_layernorm.weight"), eps, name + ".attn_norm")
        wq, wk, wv = (t(p + f"self_attn.{n}_proj.weight") for n in "qkv")
        if last:  # only the slot rows need a query and everything after attention
            hq = g.op("Gather", h, SLOTS_NAME, axis=0)
            q = g.op("MatMul", hq, g.init(name + ".q.weight_t", wq.T.copy()), hint=name + ".q")
            kv = g.op("MatMul", h, g.init(name + ".kv.weight_t", np.concatenate([wk, wv]).T.copy()), hint=name + ".kv")
            k, v = g.split(kv, [nkv * hd, nkv * hd])
            q_cos, q_sin = g.op("Gather", cos, SLOTS_NAME, axis=0), g.op("Gather", sin, SLOTS_NAME, axis=0)
            mask = causal_mask(SLOTS_NAME)
            x = g.op("Gather", x, SLOTS_NAME, axis=0, hint="slot_rows")
        else:
            qkv_w = np.concatenate([wq, wk, wv]).T.copy()
            qkv = g.op("MatMul", h, g.init(name + ".qkv.weight_t", qkv_w), hint=name + ".qkv")
            q, k, v = g.split(qkv, [nh * hd, nkv * hd, nkv * hd])
            q_cos, q_sin, mask = cos, sin, mask_all
        q = g.op("Reshape", q, g.const_i64([0, nh, hd]))
        q_norm = t(p + "self_attn.q_norm.weight") * np.float32(hd**-0.5)
        q = _rope(g, _rms_norm(g, q, q_norm, eps, name + ".q_norm"), q_cos, q_sin, half)
        k = g.op("Reshape", k, kv_heads)
        k = _rope(g, _rms_norm(g, k, t(p + "self_attn.k_norm.weight"), eps, name + ".k_norm"), cos, sin, half)
        if fused_attention and not last:
            attn = _fused_attention(g, q, k, v, lengths, nh, nkv, hd, name)
        else:
            q = g.op("Transpose", g.op("Reshape", q, q_heads), perm=[1, 2, 0, 3])  # [kv, group, rows, hd]
            k = g.op("Unsqueeze", g.op("Transpose", k, perm=[1, 2, 0]), g.const_i64([1]))  # [kv, 1, hd, L]
            v = g.op("Unsqueeze", g.op("Transpose", g.op("Reshape", v, kv_heads), perm=[1, 0, 2]), g.const_i64([1]))
            scores = g.op("Add", g.op("MatMul", q, k, hint=name + ".scores"), mask)
            attn = g.op("MatMul", g.op("Softmax", scores, axis=-1), v, hint=name + ".attn")  # [kv, group, rows, hd]
            attn = g.op("Reshape", g.op("Transpose", attn, perm=[2, 0, 1, 3]), flat)
        attn = g.linear(attn, t(p + "self_attn.o_proj.weight"), None, name + ".o")
        x = g.op("Add", x, attn, hint=name + "_res1")
        h = _rms_norm(g, x, t(p + "post_attention_layernorm.weight"), eps, name + ".ffn_norm")
        w_gate, w_up = t(p + "mlp.gate_proj.weight"), t(p + "mlp.up_proj.weight")
        gu = g.op("MatMul", h, g.init(name + ".gate_up.weight_t", np.concatenate([w_gate, w_up]).T.copy()))
        gate, up = g.split(gu, [d.intermediate, d.intermediate])
        act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        h = g.linear(act, t(p + "mlp.down_proj.weight"), None, name + ".down")
        x = g.op("Add", x, h, hint=name + "_res2")
        if progress is not None:
            progress("aligner", i + 1, d.layers)

    x = _rms_norm(g, x, t(_P + "norm.weight"), eps, "norm")
    head = t("thinker.lm_head.weight")
    if head.shape != (d.classify_num, d.hidden):
        raise CheckpointError(f"the aligner's lm_head is {head.shape}, expected {(d.classify_num, d.hidden)}")
    g.op("MatMul", x, g.init("timestamp_head.weight_t", head.T.copy()), hint="timestamp_head")
    g.nodes[-1].output[0] = LOGITS_NAME
    g.nodes[-1].name = FLOAT_MATMULS[0]

    graph = helper.make_graph(
        g.nodes,
        "qwen3_forced_aligner_decoder",
        [
            helper.make_tensor_value_info(EMBEDS_NAME, TensorProto.FLOAT, ["rows", d.hidden]),
            helper.make_tensor_value_info(SLOTS_NAME, TensorProto.INT64, ["slots"]),
        ],
        [helper.make_tensor_value_info(LOGITS_NAME, TensorProto.FLOAT, ["slots", d.classify_num])],
        g.initializers,
    )
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if fused_attention else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="qwen-whisper-compat")
    model.ir_version = 8
    return model
