"""Our language tables against openai-whisper's (``whisper.tokenizer``, 20250625), and the Qwen subset."""

from __future__ import annotations

import whisper.tokenizer as upstream

from qwen_whisper_compat import tokenizer as ours
from qwen_whisper_compat.engine.languages import ALIGNER_LANGUAGES, ASR_LANGUAGES, LANGUAGE_CODES, language_name


def test_languages_equal_upstream_in_order() -> None:
    assert list(ours.LANGUAGES.items()) == list(upstream.LANGUAGES.items())
    assert len(ours.LANGUAGES) == 100
    assert next(iter(ours.LANGUAGES.items())) == ("en", "english")
    assert list(ours.LANGUAGES.items())[-1] == ("yue", "cantonese")


def test_to_language_code_equals_upstream_in_order() -> None:
    assert list(ours.TO_LANGUAGE_CODE.items()) == list(upstream.TO_LANGUAGE_CODE.items())
    assert ours.TO_LANGUAGE_CODE["mandarin"] == "zh" and ours.TO_LANGUAGE_CODE["moldovan"] == "ro"
    assert len(ours.TO_LANGUAGE_CODE) == 112


def test_every_qwen_language_is_a_whisper_language() -> None:
    assert set(ours.QWEN_LANGUAGES.values()) == set(ASR_LANGUAGES) == set(LANGUAGE_CODES)
    assert set(ALIGNER_LANGUAGES) <= set(ours.QWEN_LANGUAGES.values())
    assert len(ours.QWEN_LANGUAGES) == len(ASR_LANGUAGES) == 30
    for code, name in ours.QWEN_LANGUAGES.items():
        assert code in ours.LANGUAGES, code
        assert LANGUAGE_CODES[name] == code
        # the prompt builder accepts the whisper code and whisper's own name, and resolves both to this name
        assert language_name(code) == name
        assert language_name(ours.LANGUAGES[code]) == name


def test_qwen_languages_follow_whisper_order_and_names() -> None:
    assert list(ours.QWEN_LANGUAGES) == [code for code in ours.LANGUAGES if code in ours.QWEN_LANGUAGES]
    assert ours.QWEN_LANGUAGES["tl"] == "Filipino"
    assert ours.LANGUAGES["tl"] == "tagalog"
    assert ours.QWEN_LANGUAGES["yue"] == "Cantonese"
    assert ours.QWEN_LANGUAGES["zh"] == "Chinese"
    assert "he" not in ours.QWEN_LANGUAGES
