"""The shapes of openai-whisper's result: ``transcribe`` returns a :class:`ResultDict` whose segments are
:class:`SegmentDict` and whose words are :class:`WordDict`, with whisper's keys in whisper's order.

They are ``TypedDict`` s: at run time plain dicts, exactly what whisper returns and what its writers read;
for a type checker, the keys and their types. OpenAI's transcription API reports the same fields
(``TranscriptionSegment`` is a segment without ``words``, ``TranscriptionWord`` a word without
``probability``), so the OpenAI-compatible server adapter reuses :class:`SegmentFields` and
:class:`WordSpan` instead of spelling them again.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["ResultDict", "SegmentDict", "SegmentFields", "WordDict", "WordSpan"]


class WordSpan(TypedDict):
    """A word and its time span in seconds (``word`` keeps its leading space and punctuation)."""

    word: str
    start: float
    end: float


class WordDict(WordSpan):
    """One entry of a segment's ``words`` (``word_timestamps=True``)."""

    probability: float


class SegmentFields(TypedDict):
    """Every key of a whisper segment but ``words``."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class SegmentDict(SegmentFields, total=False):
    """One segment of :class:`ResultDict`; ``words`` is on every segment when word timestamps were asked for,
    and on none otherwise."""

    words: list[WordDict]


class ResultDict(TypedDict):
    """What ``transcribe`` returns: ``text`` is the segments' texts joined; ``language`` is the caller's
    string, or the detected whisper code."""

    text: str
    segments: list[SegmentDict]
    language: str
