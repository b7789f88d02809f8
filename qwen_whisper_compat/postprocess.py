"""Text post-processing of segments (e.g. Chinese inverse text normalization), keeping the words consistent.

A post-processor is ``function(text, language) -> text`` (see :mod:`.plugins`). It sees a segment's text
without whisper's leading space, which is put back as it was (a Chinese segment that now starts with a
digit still has none). When the segment has word timings, the words are rebuilt so that they still
concatenate to the text: a character the post-processor kept stays with its word, and the words whose
characters it rewrote become one word (``"二", "十", "三"`` -> ``"23"``) spanning their times, with the
lowest of their probabilities. A word whose characters were all removed is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from qwen_whisper_compat.engine.types import WordTiming

if TYPE_CHECKING:
    from qwen_whisper_compat.plugins import PostProcessor


def apply(processors: Sequence[PostProcessor], text: str, language: str) -> str:
    """``text`` after each processor in turn, with its leading whitespace kept; ``""`` if nothing is left."""
    body = text.lstrip()
    for processor in processors:
        body = processor(body, language)
    body = body.strip()
    return text[: len(text) - len(text.lstrip())] + body if body else ""


def realign_words(words: Sequence[WordTiming], text: str) -> tuple[WordTiming, ...]:
    """``words`` (whose texts concatenate to the old text) re-cut to concatenate to ``text``."""
    old = "".join(w.word for w in words)
    if old == text or not old:
        return tuple(words)
    owner = [i for i, w in enumerate(words) for _ in w.word]
    # group[i]: the first word of the run of words merged with word i
    group = list(range(len(words)))
    pieces: list[tuple[int, str]] = []  # (word index, new characters), in text order
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, text, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.extend((owner[i], text[j1 + (i - i1)]) for i in range(i1, i2))
            continue
        # an insertion joins the word before it (the first word, at the start)
        touched = owner[i1:i2] or [owner[max(i1 - 1, 0)]]
        first = group[touched[0]]
        for i in range(touched[0], touched[-1] + 1):
            group[i] = first
        pieces.append((touched[0], text[j1:j2]))
    for i in range(1, len(group)):  # a merge reaching back into an earlier run joins that run
        group[i] = group[group[i]]
    texts: dict[int, str] = {}
    for index, chars in pieces:
        texts[group[index]] = texts.get(group[index], "") + chars
    out: list[WordTiming] = []
    for first, new_text in texts.items():
        members = [w for i, w in enumerate(words) if group[i] == first]
        if new_text:
            out.append(
                WordTiming(
                    new_text,
                    min(w.start for w in members),
                    max(w.end for w in members),
                    min(w.probability for w in members),
                )
            )
    return tuple(out)
