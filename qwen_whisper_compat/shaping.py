"""Segment shaping: an engine chunk (one decoded span, its words timed or not) cut into the subtitle-sized
:class:`SegmentInfo` objects every face shapes further (whisper dicts, faster-whisper ``Segment`` objects,
live updates).

The rules: a chunk without text, or one that whisper's no-speech rule drops, gives nothing; the rest is cut
by :mod:`.segments` (limits on length and width), timed by the aligner's words, or from the text's position
when there are none or they are degenerate; post-processors run on each segment's text (words follow).
Part of the seam between the faces and the engine (see :mod:`.recognizer`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qwen_whisper_compat.engine.languages import LANGUAGE_CODES
from qwen_whisper_compat.engine.types import ChunkResult, WordTiming
from qwen_whisper_compat.postprocess import apply, realign_words
from qwen_whisper_compat.segments import Piece, collapsed, estimated_words, is_wide, split_chunk

if TYPE_CHECKING:
    from qwen_whisper_compat.recognizer import RunOptions

logger = logging.getLogger("qwen_whisper_compat.recognizer")

__all__ = ["SegmentInfo", "SegmentShaper", "language_code"]

#: What a segment whose rounded times coincide is stretched to: 1 ms without words, 10 ms with words
#: (whisper rounds word times to 10 ms).
_MIN_SPAN = 0.001
_MIN_WORD_SPAN = 0.01


@dataclass(frozen=True)
class SegmentInfo:
    """One subtitle-sized segment, before it is shaped into a whisper dict or a faster-whisper Segment."""

    #: Start of the chunk that produced it, in 10 ms frames (whisper's ``seek``).
    seek: int
    start: float
    end: float
    #: Text with whisper's leading space (none before CJK text).
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    #: Word timings (their texts concatenate to ``text``), or ``None`` when not requested.
    words: tuple[WordTiming, ...] | None
    #: Whisper code of the chunk's language (``""`` when unknown).
    language: str
    #: The segment's speaker (``SPEAKER_00``, ...) when speakers were asked for.
    speaker: str | None = None
    #: Each word's speaker, with ``words``, when speakers were asked for.
    word_speakers: tuple[str | None, ...] | None = None

    def rounded(
        self, to_original: Callable[[float], float] | None = None
    ) -> tuple[float, float, list[WordTiming] | None]:
        """Start and end (to the millisecond) and the words' times (to 10 ms, as whisper rounds them),
        optionally mapped back to the original audio first. A segment with words spans exactly its words;
        rounding never makes a segment end where it starts."""
        t = to_original or (lambda seconds: seconds)
        start, end = round(t(self.start), 3), round(t(self.end), 3)
        if self.words is None:
            return start, (end if end > start else round(start + _MIN_SPAN, 3)), None
        words = [dataclasses.replace(w, start=round(t(w.start), 2), end=round(t(w.end), 2)) for w in self.words]
        if words:
            if words[-1].end <= words[0].start:
                words[-1] = dataclasses.replace(words[-1], end=round(words[0].start + _MIN_WORD_SPAN, 2))
            start, end = words[0].start, words[-1].end
        return start, end, words


def language_code(name: str) -> str:
    """Whisper code of a prompt language name (``""`` for an empty or unknown name)."""
    return LANGUAGE_CODES.get(name, "")



class SegmentShaper:
    """Cuts engine chunks into :class:`SegmentInfo` objects.

    Args:
        tokenize: The model's tokenizer (each segment carries the token ids of its final text).
    """

    def __init__(self, tokenize: Callable[[str], list[int]]) -> None:
        self._tokenize = tokenize

    def shape(self, chunk: ChunkResult, offset: float, options: RunOptions) -> Iterator[SegmentInfo]:
        """The subtitle-sized segments of an engine chunk (none for a chunk without text or one dropped as
        silence), their times shifted by ``offset`` seconds."""
        if not chunk.text.strip():
            return
        if (
            options.no_speech_threshold is not None
            and chunk.no_speech_prob > options.no_speech_threshold
            and (options.logprob_threshold is None or chunk.avg_logprob < options.logprob_threshold)
        ):
            logger.debug("chunk %d dropped as silence (no_speech_prob %.2f)", chunk.index, chunk.no_speech_prob)
            return
        for piece in self._pieces(chunk, offset, options):
            if piece.text.strip():
                segment = self._segment(chunk, piece, offset, options)
                if segment is not None:
                    yield segment

    def _pieces(self, chunk: ChunkResult, offset: float, options: RunOptions) -> list[Piece]:
        """The chunk cut into segments, timed by the aligner's words, or estimated from the text position
        when there are none or when the aligner's times are degenerate (see :func:`.segments.collapsed`)."""
        speakers = options.speakers
        at = None if speakers is None else (lambda start, end: speakers(start + offset, end + offset))
        if not chunk.words:
            return split_chunk(chunk.text, chunk.audio_start, chunk.audio_end, None, options.limits, at)
        pieces = split_chunk(chunk.text, chunk.start, chunk.end, chunk.words, options.limits, at)
        if not collapsed(chunk.words, pieces):
            return pieces
        logger.debug(
            "chunk %d: the aligner put its %d words into %.3f s of %.3f s; estimating the times from the text",
            chunk.index, len(chunk.words), chunk.words[-1].end - chunk.words[0].start,
            chunk.audio_end - chunk.audio_start,
        )  # fmt: skip
        words = estimated_words(chunk.words, chunk.audio_start, chunk.audio_end)
        return split_chunk(chunk.text, chunk.audio_start, chunk.audio_end, words, options.limits, at)

    def _segment(self, chunk: ChunkResult, piece: Piece, offset: float, options: RunOptions) -> SegmentInfo | None:
        body = piece.text.lstrip()
        lead = "" if is_wide(body[0]) else " "
        text = lead + body
        language = language_code(chunk.language)
        words = None
        if options.word_timestamps and piece.words:
            shifted = [dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in piece.words]
            shifted[0] = dataclasses.replace(shifted[0], word=lead + shifted[0].word.lstrip())  # as the text
            words = tuple(shifted)
        if options.postprocess:
            text = apply(options.postprocess, text, language)
            if not text:
                return None
            if words is not None:
                words = realign_words(words, text)
        word_speakers = None
        if options.speakers is not None and words is not None:
            word_speakers = tuple(options.speakers(w.start, w.end) for w in words)
        return SegmentInfo(
            seek=round((chunk.audio_start + offset) * 100),
            start=piece.start + offset,
            end=piece.end + offset,
            text=text,
            tokens=self._tokenize(text),
            temperature=chunk.temperature,
            avg_logprob=chunk.avg_logprob,
            compression_ratio=chunk.compression_ratio,
            no_speech_prob=chunk.no_speech_prob,
            words=words,
            language=language,
            speaker=piece.speaker,
            word_speakers=word_speakers,
        )

