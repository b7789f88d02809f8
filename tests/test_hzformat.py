"""Folders in the Qwen3-ASR-GGUF export layout (split ONNX encoder, qwen3vl GGUF) run like our own."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch
from hz_export import export_hz_folder

from qwen_whisper_compat.engine.encoder import SplitEncoder, load_encoder
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.engine.pipeline import Transcriber
from qwen_whisper_compat.engine.types import TranscribeOptions
from qwen_whisper_compat.errors import ModelFolderError


@pytest.fixture(scope="module")
def hz_folder(asr_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_hz_folder(asr_ckpt, tmp_path_factory.mktemp("hz") / "model")


def test_folder_is_recognised(hz_folder: Path) -> None:
    model_dir = load_model_dir(hz_folder, kind="asr")
    manifest = model_dir.manifest
    assert manifest.kind == "asr" and manifest.source.model_type == "qwen3-asr-gguf"
    assert {f.role for f in manifest.files} == {"encoder_frontend", "encoder_backend", "decoder"}
    assert manifest.decoder.hidden == 64 and manifest.decoder.head_dim == 32
    assert not manifest.decoder.tie_word_embeddings  # the export keeps an explicit head
    assert isinstance(load_encoder(model_dir), SplitEncoder)
    with pytest.raises(ModelFolderError, match="no manifest.json"):
        load_model_dir(hz_folder, kind="aligner")


def test_split_encoder_gets_the_window_mask(hz_folder: Path, official_asr, jfk: np.ndarray) -> None:
    wav = np.concatenate([jfk, jfk])[: 17 * 16000]
    inputs = official_asr.processor(text=official_asr._build_text_prompt("", None), audio=wav, return_tensors="pt")
    with torch.no_grad(), tiny_models.windowed_reference(official_asr.model):
        ref = official_asr.model.thinker.get_audio_features(
            inputs["input_features"], inputs["feature_attention_mask"]
        ).numpy()
    ours = load_encoder(load_model_dir(hz_folder))(inputs["input_features"][0].numpy())
    assert np.abs(ours - ref).max() / np.abs(ref).max() < 1e-4


def test_transcribes_like_our_own_folder(
    hz_folder: Path, asr_ckpt: Path, converted: Callable[..., Path], jfk: np.ndarray
) -> None:
    options = TranscribeOptions(temperatures=(0.0,), max_new_tokens=40, context="ComfyUI")
    with Transcriber(hz_folder, exact=True) as hz, Transcriber(converted(asr_ckpt, "fp32", "f32"), exact=True) as ours:
        assert hz.decoder._pos_planes == 4 and ours.decoder._pos_planes == 1  # qwen3vl M-RoPE vs qwen3
        a, b = hz.transcribe(jfk, options), ours.transcribe(jfk, options)
    assert [r.tokens for r in a] == [r.tokens for r in b]
    assert [r.text for r in a] == [r.text for r in b]


def test_wrong_gguf_is_refused(hz_folder: Path, tmp_path: Path, asr_ckpt: Path) -> None:
    """A decoder whose vocabulary lacks the Qwen3-ASR special tokens fails clearly, not with garbage."""
    import gguf

    from qwen_whisper_compat.convert.checkpoint import Checkpoint
    from qwen_whisper_compat.convert.gguf_decoder import write_decoder_gguf
    from qwen_whisper_compat.convert.tokenizer import read_tokenizer

    folder = tmp_path / "model"
    shutil.copytree(hz_folder, folder)
    for p in folder.glob("*.gguf"):
        p.unlink()
    source = Checkpoint(asr_ckpt)
    tok = read_tokenizer(asr_ckpt, source.decoder_dims().vocab_size)
    tok.tokens[151676] = "[PAD151676]"
    tok.types[151676] = int(gguf.TokenType.UNUSED)
    tokens = source.special_tokens(tok.vocab, tok.special_ids)
    write_decoder_gguf(source, tok, tokens, folder / "qwen3_asr_llm.f16.gguf", "f16", arch="qwen3vl")
    with pytest.raises(ModelFolderError, match="does not have the Qwen3-ASR special tokens"):
        Transcriber(folder)
