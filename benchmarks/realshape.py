"""Random-weight checkpoints of the real Qwen3-ASR shapes, for speed and memory measurements.

Compute cost does not depend on the weights' values, so a random checkpoint with the released
dimensions (reference/qwen3_asr.md 2.3, 3.1) measures what the real one would. Written with numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ENCODER_SHAPES = {
    "0.6b": {"d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584,
             "output_dim": 1024},
    "1.7b": {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
             "output_dim": 2048},
    "aligner": {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
                "output_dim": 1024},
}  # fmt: skip


def encoder_config(size: str) -> dict[str, object]:
    """``thinker_config.audio_config`` of a released model."""
    return {
        "num_mel_bins": 128, "downsample_hidden_size": 480, "n_window": 50, "n_window_infer": 800,
        "max_source_positions": 1500, "conv_chunksize": 500, "activation_function": "gelu",
        "scale_embedding": False, **ENCODER_SHAPES[size],
    }  # fmt: skip


def encoder_tensors(size: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float16 audio-tower tensors with the released names and shapes."""
    cfg = encoder_config(size)
    d, ffn, c, out = (int(cfg[k]) for k in ("d_model", "encoder_ffn_dim", "downsample_hidden_size", "output_dim"))
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    p = "thinker.audio_tower."
    t = {
        p + "conv2d1.weight": w(c, 1, 3, 3), p + "conv2d1.bias": w(c),
        p + "conv2d2.weight": w(c, c, 3, 3), p + "conv2d2.bias": w(c),
        p + "conv2d3.weight": w(c, c, 3, 3), p + "conv2d3.bias": w(c),
        p + "conv_out.weight": w(d, c * 16),
        p + "ln_post.weight": np.ones(d, np.float16), p + "ln_post.bias": w(d),
        p + "proj1.weight": w(d, d), p + "proj1.bias": w(d),
        p + "proj2.weight": w(out, d), p + "proj2.bias": w(out),
    }  # fmt: skip
    for i in range(int(cfg["encoder_layers"])):
        q = f"{p}layers.{i}."
        for n in ("q", "k", "v", "out"):
            t[f"{q}self_attn.{n}_proj.weight"], t[f"{q}self_attn.{n}_proj.bias"] = w(d, d), w(d)
        for n in ("self_attn_layer_norm", "final_layer_norm"):
            t[f"{q}{n}.weight"], t[f"{q}{n}.bias"] = np.ones(d, np.float16), w(d)
        t[q + "fc1.weight"], t[q + "fc1.bias"] = w(ffn, d), w(ffn)
        t[q + "fc2.weight"], t[q + "fc2.bias"] = w(d, ffn), w(d)
    return t


def write_encoder_checkpoint(folder: Path, size: str) -> Path:
    """A checkpoint folder holding only the audio tower (enough to build the ONNX encoder)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "qwen3_asr", "thinker_config": {"audio_config": encoder_config(size), "text_config": {}}}
    (folder / "config.json").write_text(json.dumps(config))
    save_file(encoder_tensors(size), str(folder / "model.safetensors"))
    return folder
