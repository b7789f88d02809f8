"""openai-whisper's own tests (tests/test_audio.py, tests/test_transcribe.py of v20250625) adapted to our
package, and upstream's writers run on a real result of ours (byte-equal to our writers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import whisper
import whisper.audio
import whisper.utils

import qwen_whisper_compat as ours


def test_audio(shared_audio: Path) -> None:
    audio_path = str(shared_audio / "jfk.flac")
    audio = ours.load_audio(audio_path)
    assert audio.ndim == 1
    assert ours.audio.SAMPLE_RATE * 10 < audio.shape[0] < ours.audio.SAMPLE_RATE * 12
    assert 0 < audio.std() < 1
    mel_from_audio = ours.log_mel_spectrogram(audio)
    mel_from_file = ours.log_mel_spectrogram(audio_path)
    assert np.allclose(mel_from_audio, mel_from_file)
    assert mel_from_audio.max() - mel_from_audio.min() <= 2.0


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_upstream(jfk: np.ndarray, n_mels: int) -> None:
    """Our numpy spectrogram equals whisper's torch one on the same samples; tensors in give tensors out."""
    theirs = whisper.audio.log_mel_spectrogram(torch.from_numpy(jfk), n_mels=n_mels).numpy()
    mine = ours.log_mel_spectrogram(jfk, n_mels=n_mels)
    assert mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() < 2e-3
    tensor = ours.log_mel_spectrogram(torch.from_numpy(jfk), n_mels=n_mels, padding=16000)
    assert isinstance(tensor, torch.Tensor) and tensor.shape[-1] == theirs.shape[-1] + 100


def test_pad_or_trim_matches_upstream(jfk: np.ndarray) -> None:
    for length in (1000, len(jfk), 480000):
        assert np.array_equal(ours.pad_or_trim(jfk, length), whisper.audio.pad_or_trim(jfk, length))
        t = torch.from_numpy(np.stack([jfk, jfk]))
        assert torch.equal(ours.pad_or_trim(t, length), whisper.audio.pad_or_trim(t, length))


def test_transcribe(tiny_whisper: Any, shared_audio: Path) -> None:
    audio_path = str(shared_audio / "jfk.flac")
    result = ours.transcribe(tiny_whisper, audio_path, language="en", temperature=0.0, word_timestamps=True)
    assert result["language"] == "en"
    assert result["text"] == "".join([s["text"] for s in result["segments"]])
    assert result["segments"] and all(s["words"] for s in result["segments"])
    for segment in result["segments"]:
        for timing in segment["words"]:
            assert timing["start"] <= timing["end"]


@pytest.mark.parametrize(
    "options",
    [{}, {"max_line_width": 20, "max_line_count": 2}, {"highlight_words": True}, {"max_words_per_line": 3}],
    ids=["plain", "lines", "highlight", "words-per-line"],
)
def test_upstream_writers_on_our_result(tiny_whisper: Any, jfk: np.ndarray, tmp_path: Path, options: dict) -> None:
    result = tiny_whisper.transcribe(jfk, language="en", temperature=0.0, word_timestamps=True)
    assert result["segments"]
    (tmp_path / "theirs").mkdir()
    (tmp_path / "ours").mkdir()
    whisper.utils.get_writer("all", str(tmp_path / "theirs"))(result, "speech.wav", **options)
    ours.utils.get_writer("all", str(tmp_path / "ours"))(result, "speech.wav", **options)
    for ext in ("txt", "vtt", "srt", "tsv", "json"):
        theirs = (tmp_path / "theirs" / f"speech.{ext}").read_bytes()
        assert theirs, ext
        assert (tmp_path / "ours" / f"speech.{ext}").read_bytes() == theirs, ext
