"""``qwen_whisper_compat.tokenizer.to_language_code``: the one mapping from a host's language tag (Wyoming's and
Home Assistant's BCP 47, OVOS's ``en-us``, OpenAI's ISO 639-1, POSIX locales, names) to a whisper code."""

from __future__ import annotations

import pytest

from qwen_whisper_compat import UnsupportedOptionError
from qwen_whisper_compat.tokenizer import LANGUAGES, QWEN_LANGUAGES, TAG_ALIASES, TO_LANGUAGE_CODE, to_language_code

TAGS = {
    "en-US": "en", "zh-CN": "zh", "zh-TW": "zh", "pt-BR": "pt", "fil": "tl", "yue": "yue", "EN": "en",
    "en_US": "en", "english": "en", "English": "en", "en-us": "en", "pt_BR": "pt", "zh-Hans-CN": "zh",
    "zh-Hant-HK": "zh", "zh-yue": "yue", "zh-cmn-Hans-CN": "zh", "fil-PH": "tl", "cmn": "zh", "es-419": "es",
    "nb-NO": "no", "iw": "he", "jv": "jw", " de-CH ": "de", "Filipino": "tl", "mandarin": "zh",
    "haitian creole": "ht", "en-GB-oxendict": "en", "sr-Latn-RS": "sr",
}  # fmt: skip


@pytest.mark.parametrize(("tag", "code"), TAGS.items(), ids=list(TAGS))
def test_host_tags_resolve_to_whisper_codes(tag: str, code: str) -> None:
    assert to_language_code(tag) == code


def test_every_whisper_code_and_name_resolves_to_itself() -> None:
    for code in LANGUAGES:
        assert to_language_code(code) == code
        assert to_language_code(code.upper()) == code
    for name, code in TO_LANGUAGE_CODE.items():
        assert to_language_code(name) == code
        assert to_language_code(name.title()) == code


def test_aliases_and_qwen_names_are_whisper_codes() -> None:
    assert set(TAG_ALIASES.values()) <= set(LANGUAGES)
    assert not set(TAG_ALIASES) & set(LANGUAGES), "an alias must not shadow a whisper code"
    for code, name in QWEN_LANGUAGES.items():
        assert to_language_code(name) == code
        assert to_language_code(f"{code}-XX") == code


@pytest.mark.parametrize("tag", ["tlh", "xx-YY", "", "-en", "klingon", "en english"])
def test_unknown_tags_name_the_languages_that_work(tag: str) -> None:
    with pytest.raises(UnsupportedOptionError) as caught:
        to_language_code(tag)
    message = str(caught.value)
    assert f"unknown language {tag!r}" in message
    assert all(code in message.split("; ")[1] for code in ("en", "zh", "yue", "haw"))
    assert isinstance(caught.value, ValueError)


def test_a_supported_set_limits_the_codes() -> None:
    model_languages = ["en", "zh", "yue"]
    assert to_language_code("zh-TW", model_languages) == "zh"
    assert to_language_code("zh-yue", frozenset(model_languages)) == "yue"
    with pytest.raises(UnsupportedOptionError, match=r"does not transcribe the language 'nb-NO' \(no, norwegian\); "
                       r"it transcribes en, yue, zh$"):  # fmt: skip
        to_language_code("nb-NO", model_languages)
    with pytest.raises(UnsupportedOptionError, match=r"unknown language 'tlh'; the languages are en, yue, zh "):
        to_language_code("tlh", model_languages)
