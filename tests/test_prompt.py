"""Output parsing and language names against the official ``qwen_asr.inference.utils``."""

from __future__ import annotations

import random

import pytest
from qwen_asr.inference.utils import SUPPORTED_LANGUAGES, detect_and_fix_repetitions, parse_asr_output

from qwen_whisper_compat.engine.languages import ASR_LANGUAGES, LANGUAGE_CODES, language_name
from qwen_whisper_compat.engine.prompt import fix_repetitions, parse_output


def _random_strings(n: int) -> list[str]:
    rng = random.Random(0)
    pieces = ["a", "b", "ab", "哈", "好的", " ", "ha", "abc", "对", ".", "xyz "]
    out = []
    for _ in range(n):
        s = ""
        while len(s) < rng.randint(0, 400):
            piece = rng.choice(pieces)
            s += piece * (rng.randint(15, 40) if rng.random() < 0.3 else rng.randint(1, 3))
        out.append(s)
    return out


@pytest.mark.parametrize("text", _random_strings(150) + ["", "a" * 21, "a" * 20, "ab" * 20 + "c", "ab" * 19])
def test_fix_repetitions_matches_official(text: str) -> None:
    assert fix_repetitions(text) == detect_and_fix_repetitions(text)


RAW = [
    "language English<asr_text>Hello world.",
    "language Chinese<asr_text>你好，世界。",
    "language None<asr_text>",
    "language None<asr_text> stray",
    "language ENGLISH<asr_text> mixed case",
    "no tag at all",
    "language German\n<asr_text>Guten Tag",
    "\nlanguage French\nextra<asr_text>Bonjour",
    "prefix line\nlanguage Spanish<asr_text>Hola",
    "",
    "   ",
    "language <asr_text>x",
    "language Chinese<asr_text>" + "哈" * 30,
]


@pytest.mark.parametrize("raw", RAW)
@pytest.mark.parametrize("forced", [None, "English"])
def test_parse_output_matches_official(raw: str, forced: str | None) -> None:
    ours = parse_output(raw, forced)
    assert (ours.language, ours.text) == parse_asr_output(raw, user_language=forced)


def test_no_speech_flag() -> None:
    assert parse_output("language None<asr_text>").no_speech
    assert not parse_output("language None<asr_text>words").no_speech
    assert not parse_output("language English<asr_text>").no_speech


def test_languages_and_codes() -> None:
    assert list(ASR_LANGUAGES) == SUPPORTED_LANGUAGES
    assert set(LANGUAGE_CODES) == set(ASR_LANGUAGES)
    assert len(set(LANGUAGE_CODES.values())) == 30
    assert language_name("en") == "English"
    assert language_name("ZH") == "Chinese"
    assert language_name("cHINese") == "Chinese"
    assert language_name("yue") == "Cantonese"
    assert language_name("tagalog") == "Filipino"
    with pytest.raises(ValueError, match=r"unsupported language 'klingon'.*English \(en\)"):
        language_name("klingon")
    with pytest.raises(ValueError, match="unsupported language 'ar'"):
        language_name("ar", supported=("Chinese", "English"))
