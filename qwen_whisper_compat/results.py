"""The shapes of openai-whisper's and faster-whisper's results. openai-whisper's: ``transcribe`` returns a :class:`ResultDict` whose segments are
:class:`SegmentDict` and whose words are :class:`WordDict`, with whisper's keys in whisper's order.

They are ``TypedDict`` s: at run time plain dicts, exactly what whisper returns and what its writers read;
for a type checker, the keys and their types. OpenAI's transcription API reports the same fields
(``TranscriptionSegment`` is a segment without ``words``, ``TranscriptionWord`` a word without
``probability``), so the OpenAI-compatible server adapter reuses :class:`SegmentFields` and
:class:`WordSpan` instead of spelling them again.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from qwen_whisper_compat.vad import VadOptions

__all__ = [
    "ResultDict", "Segment", "SegmentDict", "SegmentFields", "TranscriptionInfo", "TranscriptionOptions", "Word",
    "WordDict", "WordSpan",
]  # fmt: skip


class WordSpan(TypedDict):
    """A word and its time span in seconds (``word`` keeps its leading space and punctuation)."""

    word: str
    start: float
    end: float


class _WordDict(WordSpan):
    probability: float


class WordDict(_WordDict, total=False):
    """One entry of a segment's ``words`` (``word_timestamps=True``); ``speaker`` with ``diarize=True``."""

    speaker: str


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
    and on none otherwise; ``speaker`` (``SPEAKER_00``, ...) likewise with ``diarize=True``."""

    speaker: str
    words: list[WordDict]


class ResultDict(TypedDict):
    """What ``transcribe`` returns: ``text`` is the segments' texts joined; ``language`` is the caller's
    string, or the detected whisper code."""

    text: str
    segments: list[SegmentDict]
    language: str


# ------------------------------------------------------------------------------ faster-whisper's shapes
# faster-whisper 1.2's dataclasses, with its field names, order and defaults (``faster.py`` fills them).


class _AsDict:
    def _asdict(self) -> dict[str, Any]:
        """The fields as a dict (faster-whisper's NamedTuple-era API, kept with the same warning)."""
        warnings.warn("_asdict() is deprecated; use dataclasses.asdict() instead", DeprecationWarning, stacklevel=2)
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass
class Word(_AsDict):
    start: float
    end: float
    word: str
    probability: float
    #: Ours, after faster-whisper's fields: the word's speaker with ``diarize=True``.
    speaker: str | None = None


@dataclass
class Segment(_AsDict):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[Word] | None
    temperature: float | None
    #: Ours, after faster-whisper's fields: the segment's speaker with ``diarize=True``.
    speaker: str | None = None


@dataclass
class TranscriptionOptions:
    beam_size: int
    best_of: int
    patience: float
    length_penalty: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    log_prob_threshold: float | None
    no_speech_threshold: float | None
    compression_ratio_threshold: float | None
    condition_on_previous_text: bool
    prompt_reset_on_temperature: float
    temperatures: list[float]
    initial_prompt: str | Iterable[int] | None
    prefix: str | None
    suppress_blank: bool
    suppress_tokens: list[int] | None
    without_timestamps: bool
    max_initial_timestamp: float
    word_timestamps: bool
    prepend_punctuations: str
    append_punctuations: str
    multilingual: bool
    max_new_tokens: int | None
    clip_timestamps: str | list[float] | list[dict[str, float]] | None
    hallucination_silence_threshold: float | None
    hotwords: str | None


@dataclass
class TranscriptionInfo:
    language: str
    language_probability: float
    duration: float
    duration_after_vad: float
    all_language_probs: list[tuple[str, float]] | None
    transcription_options: TranscriptionOptions
    vad_options: VadOptions | None
