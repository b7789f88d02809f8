"""Random-weight checkpoints of the real Qwen3-ASR shapes, for speed and memory measurements.

Compute cost does not depend on the weights' values, so a random checkpoint with the released
dimensions (reference/qwen3_asr.md 2.3, 3.1) measures what the real one would. Written with numpy only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

ENCODER_SHAPES = {
    "0.6b": {"d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584,
             "output_dim": 1024},
    "1.7b": {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
             "output_dim": 2048},
    "aligner": {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
                "output_dim": 1024},
}  # fmt: skip


TEXT_SHAPES: dict[str, dict[str, int]] = {
    "0.6b": {"hidden_size": 1024, "intermediate_size": 3072},
    "1.7b": {"hidden_size": 2048, "intermediate_size": 6144},
}


def text_config(size: str) -> dict[str, object]:
    """``thinker_config.text_config`` of a released ASR model."""
    return {
        "vocab_size": 151936, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
        "head_dim": 128, "hidden_act": "silu", "max_position_embeddings": 65536, "rms_norm_eps": 1e-6,
        "rope_theta": 1000000, "tie_word_embeddings": True, "attention_bias": False,
        "rope_scaling": {"rope_type": "default", "type": "default", "mrope_section": [24, 20, 20],
                         "interleaved": True, "mrope_interleaved": True},
        **TEXT_SHAPES[size],
    }  # fmt: skip


def aligner_text_config() -> dict[str, object]:
    """``thinker_config.text_config`` of the released forced aligner (untied, 152064-row embedding)."""
    return {**text_config("0.6b"), "vocab_size": 152064, "tie_word_embeddings": False}


def decoder_tensors(size: str, seed: int = 1) -> dict[str, np.ndarray]:
    """Random float16 text-decoder tensors with the released names and shapes (tied head: no lm_head;
    the aligner adds its 5000-class head)."""
    cfg = aligner_text_config() if size == "aligner" else text_config(size)
    h, inter, hd = int(cfg["hidden_size"]), int(cfg["intermediate_size"]), int(cfg["head_dim"])
    nh, nkv, vocab = int(cfg["num_attention_heads"]), int(cfg["num_key_value_heads"]), int(cfg["vocab_size"])
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    p = "thinker.model."
    t = {p + "embed_tokens.weight": w(vocab, h), p + "norm.weight": np.ones(h, np.float16)}
    for i in range(int(cfg["num_hidden_layers"])):
        q = f"{p}layers.{i}."
        t.update({
            q + "input_layernorm.weight": np.ones(h, np.float16),
            q + "post_attention_layernorm.weight": np.ones(h, np.float16),
            q + "self_attn.q_proj.weight": w(nh * hd, h), q + "self_attn.k_proj.weight": w(nkv * hd, h),
            q + "self_attn.v_proj.weight": w(nkv * hd, h), q + "self_attn.o_proj.weight": w(h, nh * hd),
            q + "self_attn.q_norm.weight": np.ones(hd, np.float16),
            q + "self_attn.k_norm.weight": np.ones(hd, np.float16),
            q + "mlp.gate_proj.weight": w(inter, h), q + "mlp.up_proj.weight": w(inter, h),
            q + "mlp.down_proj.weight": w(h, inter),
        })  # fmt: skip
    if size == "aligner":
        t["thinker.lm_head.weight"] = w(5000, h)
    return t


def write_checkpoint(folder: Path, size: str, shards: int = 1) -> Path:
    """A complete official-layout ASR checkpoint of a released shape with random weights.

    The tokenizer, preprocessor and chat template are the real Qwen ones (built as for the tests), so the
    official ``qwen-asr`` code loads the folder like a downloaded one.
    """
    import tiny_models

    if (folder / "config.json").is_file():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    aligner = size == "aligner"
    tensors = {**encoder_tensors(size), **decoder_tensors(size)}
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for k in range(shards):
            file = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            part = names[k::shards]
            save_file({n: tensors[n] for n in part}, str(tmp / file), metadata={"format": "pt"})
            weight_map.update({n: file for n in part})
        (tmp / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    thinker = {
        "audio_token_id": 151676, "audio_start_token_id": 151669, "audio_end_token_id": 151670,
        "audio_config": encoder_config(size), "text_config": aligner_text_config() if aligner else text_config(size),
    }  # fmt: skip
    config: dict[str, object] = {
        "architectures": ["Qwen3ASRForConditionalGeneration"], "model_type": "qwen3_asr",
        "support_languages": ["Chinese", "English"], "thinker_config": thinker,
    }  # fmt: skip
    if aligner:
        thinker.update({"model_type": "qwen3_forced_aligner", "classify_num": 5000})
        config.update({"timestamp_token_id": 151705, "timestamp_segment_time": 80})
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    tiny_models.write_processor_files(tmp, aligner=aligner)
    tmp.rename(folder)
    return folder


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
