"""What a live session takes and gives: its options, and its two kinds of event."""

from __future__ import annotations

from dataclasses import dataclass

from qwen_whisper_compat.engine.speech import check_thresholds, effective_neg_threshold
from qwen_whisper_compat.engine.types import ChunkResult
from qwen_whisper_compat.errors import UnsupportedOptionError


@dataclass(frozen=True)
class LiveOptions:
    """How a live session cuts the stream into segments and how often it decodes the open one."""

    #: Decode the open segment again (a partial) every this much audio of the segment (at whole multiples
    #: of it from the segment's start, so that a step finds the encoder's short windows completed).
    step_seconds: float = 1.0
    #: The share of real time partials may take: after a partial that took ``c`` seconds, the next one waits
    #: for about ``c / partial_load`` seconds of new audio (at least ``step_seconds``). A machine too slow
    #: for a partial every step gets them less often instead of falling behind; finals are never skipped.
    partial_load: float = 0.5
    #: A pause this long (speech probability below the lower threshold) closes the segment.
    min_silence_seconds: float = 0.5
    #: Silence kept before a segment's first speech and after its last speech.
    pad_seconds: float = 0.2
    #: A segment in its last ``search_seconds`` before this length ends at its first short pause (0.1 s);
    #: one without such a pause is closed at this length, at the quietest point of its last second.
    max_segment_seconds: float = 15.0
    search_seconds: float = 3.0
    #: Silence with no speech in it is closed as a silent segment once this long (bounds what is held).
    max_silence_seconds: float = 10.0
    #: Speech starts at a window scoring at least ``threshold``; a pause in it starts at a window scoring below
    #: ``neg_threshold`` (``None``: ``threshold - 0.15``, at least 0.01 and at most ``threshold``) and lasts
    #: until a window scores ``threshold`` again: Silero's own rule (:mod:`qwen_whisper_compat.engine.speech`).
    threshold: float = 0.5
    neg_threshold: float | None = None
    #: The encoder's attention window for partials, whole seconds from 1 to 8. AuT is trained with windows
    #: of 1 to 8 s: a short one (its streaming mode) means that a partial encodes and prefills only the
    #: open short window; 8 is the offline window, whose completed windows and KV cache the final reuses.
    #: Finals always use the offline window.
    partial_window_seconds: float = 2.0
    #: The last tokens of the previous partial that are checked again (the rest of it is forced).
    rollback_tokens: int = 5
    #: Decode partials at all (finals are always decoded).
    partials: bool = True

    def __post_init__(self) -> None:
        if self.step_seconds <= 0 or self.min_silence_seconds <= 0 or self.pad_seconds < 0:
            raise UnsupportedOptionError("step_seconds and min_silence_seconds must be > 0 and pad_seconds >= 0")
        if not 0.0 < self.partial_load <= 1.0:
            raise UnsupportedOptionError(f"partial_load must be within (0, 1], got {self.partial_load}")
        if self.pad_seconds >= self.min_silence_seconds:
            raise UnsupportedOptionError("pad_seconds must be shorter than min_silence_seconds")
        if not 0 < self.search_seconds < self.max_segment_seconds:
            raise UnsupportedOptionError("search_seconds must be > 0 and shorter than max_segment_seconds")
        if self.max_silence_seconds <= 2 * self.pad_seconds:
            raise UnsupportedOptionError("max_silence_seconds must be longer than twice pad_seconds")
        check_thresholds(self.threshold, self.neg_threshold)
        if self.partial_window_seconds not in (1, 2, 3, 4, 5, 6, 7, 8):
            raise UnsupportedOptionError(
                f"partial_window_seconds must be a whole number of seconds from 1 to 8, got {self.partial_window_seconds}"
            )
        if self.rollback_tokens < 0:
            raise UnsupportedOptionError(f"rollback_tokens must be >= 0, got {self.rollback_tokens}")

    @property
    def effective_neg_threshold(self) -> float:
        """``neg_threshold``, or its default (:func:`~qwen_whisper_compat.engine.speech.effective_neg_threshold`)."""
        return effective_neg_threshold(self.threshold, self.neg_threshold)


@dataclass(frozen=True)
class Partial:
    """The best guess at the open segment's text so far; replaced by the next partial or by its final."""

    #: Index of the segment (finals and partials of one segment share it).
    index: int
    #: The segment's start and the end of the audio this guess has heard, seconds of the stream.
    start: float
    end: float
    text: str
    #: Token ids of ``text`` (the language header excluded).
    tokens: tuple[int, ...]
    #: Prompt language name (``""`` when not known yet).
    language: str


@dataclass(frozen=True)
class Final:
    """A closed segment, decoded as the offline pipeline decodes that span (or silent: not decoded)."""

    #: The decode; ``chunk.audio_start``/``audio_end`` are the segment's bounds (``start``/``end`` snap to
    #: the words when they are timed). Segments tile the stream: each sample lies in exactly one.
    chunk: ChunkResult
    #: False for a span in which the voice activity detector heard no speech (text empty, nothing decoded).
    speech: bool

    @property
    def index(self) -> int:
        return self.chunk.index

    @property
    def start(self) -> float:
        return self.chunk.audio_start

    @property
    def end(self) -> float:
        return self.chunk.audio_end

    @property
    def text(self) -> str:
        return self.chunk.text


LiveEvent = Partial | Final
