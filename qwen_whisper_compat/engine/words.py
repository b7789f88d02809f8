"""Splitting a transcript into the units the forced aligner times, exactly as the official aligner does.

* Every character that is not a letter, a digit or ``'`` is dropped from a unit ("cleaning").
* Japanese: the words of ``nagisa`` (optional extra ``ja``), cleaned.
* Korean: ``soynlp``'s ``LTokenizer`` with the official word list (optional extra ``ko``), cleaned.
* Every other language, Chinese and Cantonese included: whitespace-separated words, cleaned, with every
  CJK ideograph split out as a unit of its own (kana and hangul are not split).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

from qwen_whisper_compat.errors import MissingDependencyError

_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF), (0xF900, 0xFAFF),
)  # fmt: skip


def is_kept(ch: str) -> bool:
    """Letters, digits and the apostrophe survive cleaning."""
    return ch == "'" or unicodedata.category(ch)[0] in "LN"


def clean(token: str) -> str:
    """``token`` without the characters the aligner ignores."""
    return "".join(ch for ch in token if is_kept(ch))


def is_cjk(ch: str) -> bool:
    """Whether ``ch`` is a CJK ideograph (a unit of its own)."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def split_words(text: str, language: str) -> list[str]:
    """The aligner's units of ``text`` for a prompt language name (e.g. ``"English"``).

    Raises:
        MissingDependencyError: Japanese without ``nagisa`` or Korean without ``soynlp``.
    """
    lang = language.lower()
    if lang == "japanese":
        return [w for w in (clean(t) for t in _nagisa().tagging(text).words) if w]
    if lang == "korean":
        return [w for w in (clean(t) for t in _korean_tokenizer().tokenize(text)) if w]
    units: list[str] = []
    for segment in text.split():
        buf = ""
        for ch in clean(segment):
            if is_cjk(ch):
                if buf:
                    units.append(buf)
                    buf = ""
                units.append(ch)
            else:
                buf += ch
        if buf:
            units.append(buf)
    return units


def _nagisa() -> Any:
    try:
        import nagisa
    except ImportError as e:
        raise MissingDependencyError(
            "Japanese word timestamps need nagisa: pip install 'qwen-whisper-compat[ja]'"
        ) from e
    return nagisa


@lru_cache(maxsize=1)
def _korean_tokenizer() -> Any:
    try:
        from soynlp.tokenizer import LTokenizer
    except ImportError as e:
        raise MissingDependencyError(
            "Korean word timestamps need soynlp: pip install 'qwen-whisper-compat[ko]'"
        ) from e
    words = resources.files("qwen_whisper_compat.engine").joinpath("assets/korean_words.txt").read_text("utf-8")
    return LTokenizer(scores={w: 1.0 for w in words.split()})
