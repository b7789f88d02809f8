"""Parity with the official ``qwen-asr`` code on tiny random models of the exact architecture.

The reference is the official modules with the encoder attending in its 104-token windows (the released
models' semantics, see tiny_models.windowed_reference); everything on our side runs from the converted
model folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch
from qwc_fixtures import ALIGN_CASES

from qwen_whisper_compat.engine.decoder import GGUFDecoder
from qwen_whisper_compat.engine.encoder import AudioEncoder
from qwen_whisper_compat.engine.mel import log_mel_spectrogram
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.engine.prompt import asr_prompt

SR = 16000
# name -> number of samples cut from real speech (jfk twice over for 17 s)
LENGTHS = {"0.3s": int(0.3 * SR), "8s": 8 * SR, "8.01s": int(8.01 * SR), "17s": 17 * SR}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="session")
def clips(jfk: np.ndarray, zh20s: np.ndarray) -> dict[str, np.ndarray]:
    long = np.concatenate([jfk, jfk])
    out = {"jfk": jfk, "zh20s": zh20s}
    out.update({name: long[:n] for name, n in LENGTHS.items()})
    return out


@pytest.fixture(scope="session")
def official_for(official_asr, tiny_checkpoint: Callable[..., Path]):  # type: ignore[no-untyped-def]
    """Factory: the official Qwen3ASRModel for a tiny checkpoint variant (cached)."""
    from qwc_fixtures import load_official
    from qwen_asr import Qwen3ASRModel

    cache = {("asr", "bf16"): official_asr}

    def get(variant: str, dtype: str = "bf16"):  # type: ignore[no-untyped-def]
        if (variant, dtype) not in cache:
            path = tiny_checkpoint(variant, dtype)
            cache[variant, dtype] = load_official(Qwen3ASRModel, path)
        return cache[variant, dtype]

    return get


def official_inputs(official, wav: np.ndarray, context: str = "", language: str | None = None):  # type: ignore[no-untyped-def]
    text = official._build_text_prompt(context=context, force_language=language)
    return official.processor(text=text, audio=wav, return_tensors="pt")


def reference_features(model, inputs) -> np.ndarray:  # type: ignore[no-untyped-def]
    with torch.no_grad(), tiny_models.windowed_reference(model):
        feats = model.thinker.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"])
    return feats.numpy()


def official_mel(inputs) -> np.ndarray:  # type: ignore[no-untyped-def]
    n = int(inputs["feature_attention_mask"].sum())
    return inputs["input_features"][0, :, :n].numpy()


# ----------------------------------------------------------------------------------------------- mel
@pytest.mark.parametrize("clip", ["jfk", *LENGTHS])
def test_log_mel_matches_whisper_feature_extractor(official_asr, clips: dict[str, np.ndarray], clip: str) -> None:
    wav = clips[clip]
    ref = official_mel(official_inputs(official_asr, wav))
    ours = log_mel_spectrogram(wav)
    assert ours.shape == ref.shape == (128, len(wav) // 160)
    assert np.abs(ours - ref).max() < 1e-4


# ------------------------------------------------------------------------------------------- encoder
@pytest.mark.parametrize("ckpt_dtype", ["bf16", "fp32"])
@pytest.mark.parametrize("clip", ["jfk", *LENGTHS])
def test_fp32_encoder_matches_official_windowed_encoder(
    tiny_checkpoint: Callable[..., Path],
    converted: Callable[..., Path],
    official_for,
    clips: dict[str, np.ndarray],
    clip: str,
    ckpt_dtype: str,
) -> None:
    ckpt = tiny_checkpoint("asr", ckpt_dtype)
    official = official_for("asr", ckpt_dtype)
    inputs = official_inputs(official, clips[clip])
    ref = reference_features(official.model, inputs)
    enc = AudioEncoder(load_model_dir(converted(ckpt)).file_path("encoder"))
    ours = enc(official_mel(inputs))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4


@pytest.mark.parametrize("clip", ["8.01s", "17s", "jfk"])
def test_encoding_in_window_groups_is_exact(
    asr_ckpt: Path, converted: Callable[..., Path], official_asr, clips: dict[str, np.ndarray], clip: str
) -> None:
    """Groups of whole 8 s windows (memory bound) give the official windowed output, tails included."""
    inputs = official_inputs(official_asr, clips[clip])
    ref = reference_features(official_asr.model, inputs)
    enc = AudioEncoder(load_model_dir(converted(asr_ckpt)).file_path("encoder"), max_frames=800)
    mel = official_mel(inputs)
    assert len(enc.groups(mel.shape[1])) == {"8.01s": 1, "17s": 3, "jfk": 2}[clip]
    ours = enc(mel)
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4


def test_windowing_is_visible_to_the_encoder_parity_test(
    asr_ckpt: Path, converted: Callable[..., Path], official_asr, clips: dict[str, np.ndarray]
) -> None:
    """The official full-clip attention differs from ours on a 17 s clip: the parity test can fail."""
    inputs = official_inputs(official_asr, clips["17s"])
    with torch.no_grad():
        full = official_asr.model.thinker.get_audio_features(
            inputs["input_features"], inputs["feature_attention_mask"]
        ).numpy()
    ours = AudioEncoder(load_model_dir(converted(asr_ckpt)).file_path("encoder"))(official_mel(inputs))
    assert np.abs(ours - full).max() / np.abs(full).max() > 1e-2


# Honest bounds measured on the peaky tiny models (N(0, 0.3) weights are a hard case for quantizers):
# fp16 ~1.0, int8 0.998-0.9996, int4 (MatMulNBits, blocks of 32) 0.957-0.976. The int8 encoder's weights are
# unsigned so that its accuracy does not depend on the CPU (signed ones gave 0.9927 on an AVX2 machine
# without VNNI, whose u8 x s8 kernel saturates; see convert/quantize.py).
ENCODER_BOUNDS = {"fp16": 0.9999, "int8": 0.995, "int4": 0.93}


@pytest.mark.parametrize("variant", ["asr", pytest.param("asr_q4", marks=pytest.mark.slow)])
@pytest.mark.parametrize("precision", sorted(ENCODER_BOUNDS))
def test_quantized_encoder_cosine(
    tiny_checkpoint: Callable[..., Path],
    converted: Callable[..., Path],
    official_for,
    clips: dict[str, np.ndarray],
    variant: str,
    precision: str,
) -> None:
    ckpt = tiny_checkpoint(variant)
    official = official_for(variant)
    inputs = official_inputs(official, clips["17s"])
    ref = reference_features(official.model, inputs)
    model_dir = load_model_dir(converted(ckpt, precision, "f16"))
    assert model_dir.manifest.file("encoder").precision == precision
    ours = AudioEncoder(model_dir.file_path("encoder"))(official_mel(inputs))
    cos = cosine(ours, ref)
    print(f"{variant} encoder {precision}: cosine {cos:.5f}, worst row {row_cosines(ours, ref).min():.5f}")
    assert cos > ENCODER_BOUNDS[precision]


# ------------------------------------------------------------------------------------------- decoder
PROMPTS = {
    "empty": ("", None),
    "context": ("Hot words: ComfyUI, 通义千问.\nSpeaker: Dr. Smith's talk", None),
    "language": ("", "English"),
}


@pytest.mark.parametrize("case", sorted(PROMPTS))
def test_prompt_ids_equal_official_processor(
    asr_ckpt: Path, converted: Callable[..., Path], official_asr, jfk: np.ndarray, case: str
) -> None:
    context, language = PROMPTS[case]
    inputs = official_inputs(official_asr, jfk, context, language)
    model_dir = load_model_dir(converted(asr_ckpt))
    n_audio = model_dir.manifest.encoder.output_length(len(jfk) // 160)
    with GGUFDecoder(model_dir.file_path("decoder"), n_ctx=512) as dec:
        prompt = asr_prompt(model_dir.manifest.tokens, dec.tokenize, n_audio, context=context, language=language)
    assert prompt.ids == inputs["input_ids"][0].tolist()
    assert prompt.ids[prompt.audio_offset - 1] == model_dir.manifest.tokens.audio_start
    assert prompt.ids[prompt.audio_offset + n_audio] == model_dir.manifest.tokens.audio_end


def _our_logits(dec: GGUFDecoder, model_dir, ids: list[int], audio_offset: int, feats: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    emb = dec.token_embeddings(ids)
    emb[audio_offset : audio_offset + len(feats)] = feats
    dec.eval_embeddings(emb, 0, range(len(ids)))
    return np.stack([dec.logits(i) for i in range(len(ids))])


@pytest.mark.parametrize("precision", ["f32", "f16"])
@pytest.mark.parametrize("case", sorted(PROMPTS))
def test_decoder_logits_match_official_thinker(
    asr_ckpt: Path, converted: Callable[..., Path], official_asr, jfk: np.ndarray, case: str, precision: str
) -> None:
    context, language = PROMPTS[case]
    inputs = official_inputs(official_asr, jfk, context, language)
    feats = reference_features(official_asr.model, inputs)
    with torch.no_grad(), tiny_models.windowed_reference(official_asr.model):
        ref = official_asr.model.thinker(**inputs).logits[0].numpy()
    model_dir = load_model_dir(converted(asr_ckpt, "fp32", precision))
    with GGUFDecoder(model_dir.file_path("decoder"), n_ctx=512, exact=precision == "f32") as dec:
        prompt = asr_prompt(model_dir.manifest.tokens, dec.tokenize, len(feats), context=context, language=language)
        ours = _our_logits(dec, model_dir, prompt.ids, prompt.audio_offset, feats)
    cos = row_cosines(ours, ref)
    assert ours.shape == ref.shape
    assert cos.min() > 0.999, f"worst position {int(cos.argmin())}: cosine {cos.min():.6f}"
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_greedy_continuation_identical_for_32_tokens(
    asr_ckpt: Path, converted: Callable[..., Path], official_asr, jfk: np.ndarray
) -> None:
    inputs = official_inputs(official_asr, jfk)
    feats = reference_features(official_asr.model, inputs)
    model = official_asr.model
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    expected: list[int] = []
    with torch.no_grad(), tiny_models.windowed_reference(model):
        for _ in range(32):  # official forward, greedy, EOS ignored so that 32 tokens are compared
            logits = model.thinker(
                input_ids=ids,
                attention_mask=mask,
                input_features=inputs["input_features"],
                feature_attention_mask=inputs["feature_attention_mask"],
            ).logits[0, -1]
            token = int(logits.argmax())
            expected.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
            mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], 1)
    model_dir = load_model_dir(converted(asr_ckpt, "fp32", "f32"))
    got: list[int] = []
    with GGUFDecoder(model_dir.file_path("decoder"), n_ctx=512, exact=True) as dec:
        prompt = asr_prompt(model_dir.manifest.tokens, dec.tokenize, len(feats))
        emb = dec.token_embeddings(prompt.ids)
        emb[prompt.audio_offset : prompt.audio_offset + len(feats)] = feats
        dec.eval_embeddings(emb, 0, [len(prompt.ids) - 1])
        token, pos = int(dec.logits(len(prompt.ids) - 1).argmax()), len(prompt.ids)
        for _ in range(32):
            got.append(token)
            dec.eval_tokens([token], pos, [0])
            token, pos = int(dec.logits(0).argmax()), pos + 1
    assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "bound"), [("q8_0", 0.99), ("q4_k", 0.85)])
def test_quantized_decoder_logits_stay_close(
    tiny_checkpoint: Callable[..., Path],
    converted: Callable[..., Path],
    official_for,
    jfk: np.ndarray,
    precision: str,
    bound: float,
) -> None:
    """Sanity bound for the llama.cpp quantizations (measured: q8_0 0.998, q4_k 0.907 on random weights)."""
    ckpt = tiny_checkpoint("asr_q4")
    official = official_for("asr_q4")
    inputs = official_inputs(official, jfk)
    feats = reference_features(official.model, inputs)
    with torch.no_grad(), tiny_models.windowed_reference(official.model):
        ref = official.model.thinker(**inputs).logits[0].numpy()
    model_dir = load_model_dir(converted(ckpt, "fp32", precision))
    with GGUFDecoder(model_dir.file_path("decoder"), n_ctx=512) as dec:
        prompt = asr_prompt(model_dir.manifest.tokens, dec.tokenize, len(feats))
        ours = _our_logits(dec, model_dir, prompt.ids, prompt.audio_offset, feats)
    cos = row_cosines(ours, ref)
    print(f"decoder {precision}: worst logits cosine {cos.min():.5f}")
    assert cos.min() > bound


# ------------------------------------------------------------------------------------------- aligner


@pytest.mark.parametrize("case", sorted(ALIGN_CASES))
def test_aligner_slots_argmax_equal_official_logits(
    aligner_ckpt: Path, converted: Callable[..., Path], official_aligner, clips: dict[str, np.ndarray], case: str
) -> None:
    clip, language, text = ALIGN_CASES[case]
    wav = clips[clip]
    words, aligner_text = official_aligner.aligner_processor.encode_timestamp(text, language)
    inputs = official_aligner.processor(text=[aligner_text], audio=[wav], return_tensors="pt", padding=True)
    with torch.no_grad(), tiny_models.windowed_reference(official_aligner.model):
        ref_logits = official_aligner.model.thinker(**inputs).logits[0].numpy()
    ref_ids = inputs["input_ids"][0].tolist()

    model_dir = load_model_dir(converted(aligner_ckpt), kind="aligner")
    tok = model_dir.manifest.tokens
    assert tok.timestamp is not None
    head = np.load(model_dir.file_path("timestamp_head"))
    feats = AudioEncoder(model_dir.file_path("encoder"))(log_mel_spectrogram(wav))
    with GGUFDecoder(model_dir.file_path("decoder"), n_ctx=1024, embeddings=True, exact=True) as dec:
        ids = [tok.audio_start, *[tok.audio_pad] * len(feats), tok.audio_end]
        for w in words:
            ids += [*dec.tokenize(w), tok.timestamp, tok.timestamp]
        assert ids == ref_ids
        slots = [i for i, t in enumerate(ids) if t == tok.timestamp]
        emb = dec.token_embeddings(ids)
        emb[1 : 1 + len(feats)] = feats
        dec.eval_embeddings(emb, 0, slots)
        hidden = np.stack([dec.hidden(i) for i in slots])
    ours = hidden @ head.T
    assert ours.shape == (2 * len(words), 5000)
    np.testing.assert_array_equal(ours.argmax(1), ref_logits[slots].argmax(1))
    # slots' logits differ from one another (cosine down to ~0.93): a misplaced slot would show here
    assert row_cosines(ours, ref_logits[slots]).min() > 0.9999
