"""The AuT audio encoder of a checkpoint -> one ONNX graph, built node by node with ``onnx.helper``.

Graph: ``input_features`` float32 ``[n_mels, T]`` (normalised log-mel, any T >= 1) ->
``audio_embeds`` float32 ``[N, output_dim]`` with N = 13 * (T // 100) + ceil((T % 100) / 8).

It computes exactly what the released models were trained with (reference/qwen3_asr.md 2.1-2.5):

* the mel is cut into 100-frame chunks; the last one is zero-padded to 100 frames when there are
  several chunks (the official ``pad_sequence``), and left as is when the input is a single short chunk;
* three stride-2 convolutions with exact (erf) GELU, ``conv_out``, and the sinusoid positions 0..12 added
  per chunk; conv outputs of padded frames are dropped before the transformer;
* transformer layers with block-diagonal attention in windows of 104 tokens (8 s), counted from the first
  token. Windows are a batch dimension; the last window's padding rows are masked out as keys and cut
  from the output. A clip shorter than one window is not padded at all.

One dynamic graph rather than the seed's split "static conv frontend + transformer backend": the
conv stem runs on all chunks in one batched call and nothing crosses the Python boundary per chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper

from qwen_whisper_compat.convert.checkpoint import Checkpoint
from qwen_whisper_compat.convert.onnx_graph import GraphBuilder
from qwen_whisper_compat.engine.encoder import INPUT_NAME, OUTPUT_NAME
from qwen_whisper_compat.errors import CheckpointError

OPSET = 17
_P = "thinker.audio_tower."

Progress = Callable[[str, int, int], None]


def sinusoid_table(length: int, channels: int) -> np.ndarray:
    """The encoder's positional table (``SinusoidsPositionEmbedding``), computed as the official float32 math."""
    if channels % 2:
        raise CheckpointError(f"audio d_model must be even, got {channels}")
    inc = np.log(10000.0) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2, dtype=np.float32)).astype(np.float32)
    t = np.arange(length, dtype=np.float32)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def build_encoder_graph(ckpt: Checkpoint, progress: Progress | None = None) -> onnx.ModelProto:
    """Build the fp32 ONNX encoder of ``ckpt``."""
    d = ckpt.encoder_dims()
    if d.d_model % d.heads:
        raise CheckpointError(f"audio d_model {d.d_model} is not divisible by {d.heads} heads")
    t = ckpt.tensor
    g = GraphBuilder()
    chunk = d.chunk_frames
    tok_per_chunk = d.tokens_per_chunk
    window = d.window_tokens
    head_dim = d.d_model // d.heads

    # ---- chunking: [n_mels, T] -> [nC, 1, n_mels, L] with L = min(T, 100) -------------------------------
    n_frames = g.scalar(INPUT_NAME, 1)
    c_chunk = g.const_i64(chunk)
    chunk_len = g.op("Min", n_frames, c_chunk)
    n_chunks = g.ceil_div(n_frames, c_chunk)
    pad_frames = g.op("Sub", g.op("Mul", n_chunks, chunk_len), n_frames)
    zeros3 = g.const_i64([0, 0, 0])
    pads = g.op("Concat", zeros3, g.op("Unsqueeze", pad_frames, g.const_i64([0])), axis=0)
    x = g.op("Pad", INPUT_NAME, pads, hint="pad_mel")
    x = g.op("Reshape", x, g.vec(g.const_i64(d.n_mels), n_chunks, chunk_len))
    x = g.op("Transpose", x, perm=[1, 0, 2])
    x = g.op("Unsqueeze", x, g.const_i64([1]))

    # ---- conv stem ---------------------------------------------------------------------------------------
    for i in (1, 2, 3):
        w = g.init(f"conv2d{i}.weight", t(f"{_P}conv2d{i}.weight"))
        b = g.init(f"conv2d{i}.bias", t(f"{_P}conv2d{i}.bias"))
        x = g.op("Conv", x, w, b, strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3], hint=f"conv{i}")
        x = g.gelu(x)
    # [nC, C, F, t] -> [nC, t, C*F]
    x = g.op("Transpose", x, perm=[0, 3, 1, 2])
    n_freq = (((d.n_mels + 1) // 2 + 1) // 2 + 1) // 2
    x = g.op("Reshape", x, g.const_i64([0, 0, d.conv_channels * n_freq]))
    x = g.linear(x, t(f"{_P}conv_out.weight"), None, "conv_out")
    t_chunk = g.scalar(x, 1)
    pos = g.init("positional_embedding", sinusoid_table(tok_per_chunk, d.d_model))
    pos = g.op("Slice", pos, g.const_i64([0]), g.op("Unsqueeze", t_chunk, g.const_i64([0])), g.const_i64([0]))
    x = g.op("Add", x, pos)

    # ---- keep valid tokens: N = tok_per_chunk * (T // chunk) + conv_len(T % chunk) -------------------------
    x = g.op("Reshape", x, g.const_i64([-1, d.d_model]))
    rest = g.op("Mod", n_frames, c_chunk)
    eight = g.const_i64(8)
    n_tok = g.op(
        "Add",
        g.op("Mul", g.op("Div", n_frames, c_chunk), g.const_i64(tok_per_chunk)),
        g.ceil_div(rest, eight),
        hint="n_tokens",
    )
    n_tok_1d = g.op("Unsqueeze", n_tok, g.const_i64([0]))
    x = g.op("Slice", x, g.const_i64([0]), n_tok_1d, g.const_i64([0]), hint="valid_tokens")

    # ---- windows: [N, d] -> [nW, W, d] with W = min(N, 104) ---------------------------------------------
    win = g.op("Min", n_tok, g.const_i64(window))
    n_win = g.ceil_div(n_tok, win)
    padded = g.op("Mul", n_win, win)
    pad_rows = g.op("Sub", padded, n_tok)
    pads = g.op("Concat", g.const_i64([0, 0]), g.op("Unsqueeze", pad_rows, g.const_i64([0])), g.const_i64([0]), axis=0)
    x = g.op("Pad", x, pads, hint="pad_windows")
    x = g.op("Reshape", x, g.vec(n_win, win, g.const_i64(d.d_model)))
    # additive key mask [nW, 1, 1, W]: 0 for real tokens, -inf for the padding rows of the last window
    idx = g.op("Range", g.const_i64(0), padded, g.const_i64(1))
    valid = g.op("Less", idx, n_tok)
    mask = g.op("Where", valid, g.const_f32(0.0), g.const_f32(float("-inf")))
    mask = g.op("Reshape", mask, g.vec(n_win, g.const_i64(1), g.const_i64(1), win), hint="window_mask")
    head_shape = g.vec(n_win, win, g.const_i64(d.heads), g.const_i64(head_dim))
    model_shape = g.vec(n_win, win, g.const_i64(d.d_model))

    scale = head_dim**-0.5
    for i in range(d.layers):
        p = f"{_P}layers.{i}."
        name = f"layers.{i}"
        h = g.layer_norm(x, t(p + "self_attn_layer_norm.weight"), t(p + "self_attn_layer_norm.bias"), name + ".ln1")
        # the softmax scale is folded into q_proj (weights and bias)
        q = g.linear(h, t(p + "self_attn.q_proj.weight") * scale, t(p + "self_attn.q_proj.bias") * scale, name + ".q")
        k = g.linear(h, t(p + "self_attn.k_proj.weight"), t(p + "self_attn.k_proj.bias"), name + ".k")
        v = g.linear(h, t(p + "self_attn.v_proj.weight"), t(p + "self_attn.v_proj.bias"), name + ".v")
        q = g.op("Transpose", g.op("Reshape", q, head_shape), perm=[0, 2, 1, 3])  # [nW, H, W, hd]
        k = g.op("Transpose", g.op("Reshape", k, head_shape), perm=[0, 2, 3, 1])  # [nW, H, hd, W]
        v = g.op("Transpose", g.op("Reshape", v, head_shape), perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("MatMul", q, k), mask)
        attn = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        attn = g.op("Reshape", g.op("Transpose", attn, perm=[0, 2, 1, 3]), model_shape)
        attn = g.linear(attn, t(p + "self_attn.out_proj.weight"), t(p + "self_attn.out_proj.bias"), name + ".o")
        x = g.op("Add", x, attn, hint=name + "_res1")
        h = g.layer_norm(x, t(p + "final_layer_norm.weight"), t(p + "final_layer_norm.bias"), name + ".ln2")
        h = g.gelu(g.linear(h, t(p + "fc1.weight"), t(p + "fc1.bias"), name + ".fc1"))
        h = g.linear(h, t(p + "fc2.weight"), t(p + "fc2.bias"), name + ".fc2")
        x = g.op("Add", x, h, hint=name + "_res2")
        if progress is not None:
            progress("encoder", i + 1, d.layers)

    x = g.layer_norm(x, t(_P + "ln_post.weight"), t(_P + "ln_post.bias"), "ln_post")
    x = g.gelu(g.linear(x, t(_P + "proj1.weight"), t(_P + "proj1.bias"), "proj1"))
    x = g.linear(x, t(_P + "proj2.weight"), t(_P + "proj2.bias"), "proj2")
    x = g.op("Reshape", x, g.const_i64([-1, d.output_dim]))
    g.op("Slice", x, g.const_i64([0]), n_tok_1d, g.const_i64([0]), hint="out")
    g.nodes[-1].output[0] = OUTPUT_NAME

    graph = helper.make_graph(
        g.nodes,
        "qwen3_asr_audio_encoder",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [d.n_mels, "n_frames"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n_tokens", d.output_dim])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="qwen-whisper-compat",
    )
    model.ir_version = 8
    return model
