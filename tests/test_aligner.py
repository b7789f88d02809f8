"""The forced aligner: timestamps equal the official aligner's, words map back onto the transcript."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch
from qwc_fixtures import ALIGN_CASES

from qwen_whisper_compat.engine.aligner import ForcedAligner, attach_words
from qwen_whisper_compat.engine.types import WordTiming
from qwen_whisper_compat.engine.words import split_words

SR = 16000
CASES = ALIGN_CASES


@pytest.fixture(scope="module")
def audio(jfk: np.ndarray, zh20s: np.ndarray) -> dict[str, np.ndarray]:
    return {"jfk": jfk, "zh20s": zh20s}


@pytest.fixture(scope="module")
def aligner(aligner_ckpt: Path, converted: Callable[..., Path]):  # type: ignore[no-untyped-def]
    with ForcedAligner(converted(aligner_ckpt, "fp32", "f32"), exact=True) as a:
        yield a


@pytest.mark.parametrize("case", sorted(CASES))
def test_timestamps_equal_official_align(
    aligner: ForcedAligner, official_aligner, audio: dict[str, np.ndarray], case: str
) -> None:
    clip, language, text = CASES[case]
    with torch.no_grad(), tiny_models.windowed_reference(official_aligner.model):
        (result,) = official_aligner.align(audio=(audio[clip], SR), text=text, language=language)
    expected = [(round(it.start_time * 1000), round(it.end_time * 1000)) for it in result.items]
    units = split_words(text, language)
    assert units == [it.text for it in result.items]
    ms, probs = aligner.align_units(audio[clip], units)
    assert list(zip(ms[0::2], ms[1::2], strict=True)) == expected
    assert probs.shape == (2 * len(units),) and ((probs > 0) & (probs <= 1)).all()


def _check_invariants(words: list[WordTiming], text: str, offset: float, duration: float) -> None:
    assert "".join(w.word for w in words) == text
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start for a, b in itertools.pairwise(words))
    assert all(offset <= w.start and w.end <= offset + duration + 1e-9 for w in words)


@pytest.mark.parametrize("case", sorted(CASES))
def test_words_keep_spacing_and_punctuation(aligner: ForcedAligner, audio: dict[str, np.ndarray], case: str) -> None:
    clip, language, text = CASES[case]
    text = " " + text if language == "English" else text
    words = aligner.align(audio[clip], text, language, offset=30.0)
    _check_invariants(words, text, 30.0, len(audio[clip]) / SR)
    if case == "english":
        assert [w.word for w in words[:5]] == [" And", " so", " my", " fellow", " Americans,"]
        assert words[-1].word == " country."
    if case == "chinese":
        assert [w.word for w in words[10:14]] == ["分", "析，", "今", "年"]


def test_attach_words_repairs_and_clamps() -> None:
    text = " Hello, (big) world! 你好。"
    units = split_words(text, "Chinese")
    assert units == ["Hello", "big", "world", "你", "好"]
    ms = [500, 400, 900, 900, 100, 2000, 2500, 9000, 9000, 9000]  # inverted, backwards, beyond the end
    words = attach_words(text, units, ms, np.full(10, 0.5), offset=10.0, duration=3.0)
    assert [w.word for w in words] == [" Hello,", " (big)", " world!", " 你", "好。"]
    _check_invariants(words, text, 10.0, 3.0)
    assert words[-1].end == 13.0 and words[0].probability == pytest.approx(0.5)


def test_units_a_word_splitter_normalised_still_find_their_words() -> None:
    """nagisa gives "VerificationJ" for the transcript's "VerificationＪ" (fullwidth J), as a random model's
    Japanese-tagged chunk showed: the unit is found through its compatibility form; a unit none of whose
    characters is in the text is an empty word where it stands, never an error."""
    text = " draft VerificationＪ 処分 zz"
    ms = [0, 100, 100, 200, 200, 300, 300, 400, 400, 500]
    words = attach_words(text, ["draft", "VerificationJ", "処分", "qq", "zz"], ms, np.full(10, 0.5), 0.0, 1.0)
    assert [w.word for w in words] == [" draft", " VerificationＪ", " 処分", "", " zz"]
    _check_invariants(words, text, 0.0, 1.0)


def test_long_audio_is_refused(aligner: ForcedAligner) -> None:
    with pytest.raises(ValueError, match="at most 180 s"):
        aligner.align_units(np.zeros(181 * SR, np.float32), ["a"])


def test_empty_transcript(aligner: ForcedAligner, jfk: np.ndarray) -> None:
    assert aligner.align(jfk, " ... ", "English") == []
