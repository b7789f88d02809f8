"""Subtitle-sized segments from engine chunks.

The engine decodes ~30 s chunks; whisper users expect cues of a sentence or a clause. A chunk's text is
cut at sentence ends, then every piece that is still too long (more than ``max_seconds`` of audio or
more than ``max_width`` display columns, a CJK character counting two) is cut again, recursively, at its
best boundary: clause punctuation first, then the longest pause, preferring boundaries near the middle.

Times come from the forced aligner's word timings when the chunk has them. Without an aligner the
engine is run on shorter chunks cut at quiet points of the audio (at most ``max_seconds``), and the
times of the pieces inside a chunk are estimated from their position in the chunk's text: a piece
starts at the chunk's start plus the chunk's duration times the share of the text before it.

The aligner's times are not always usable: on some inputs it puts every word of a chunk at one instant, or
squeezes a segment into far less time than its text takes to say, which gives zero-length subtitles.
:func:`collapsed` recognises such a chunk, and :func:`estimated_words` re-times its words by the same
text-position rule.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwen_whisper_compat.engine.types import WordTiming
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.speakers import speaker_runs

#: Characters that end a sentence (the piece after them starts a new segment).
SENTENCE_END = frozenset(".?!。？！…")
#: Characters that end a clause (preferred cut points inside a long sentence).
CLAUSE_END = frozenset(",;:，；：、")
_CLOSERS = "\"'”’)]}」』）》"
#: An aligned segment shorter than this per character of its text (spaces excepted) is not a real timing:
#: even fast speech takes 60 ms or more per Latin letter and 150 ms per CJK character.
MIN_SECONDS_PER_CHARACTER = 0.02


@dataclass(frozen=True)
class SegmentLimits:
    """How long a segment may be."""

    #: Longest segment, in seconds of audio.
    max_seconds: float = 10.0
    #: Widest segment text, in display columns: a CJK character counts two, so the default allows about 42
    #: CJK characters or 84 Latin ones.
    max_width: int = 84

    def __post_init__(self) -> None:
        if self.max_seconds <= 0 or self.max_width < 2:
            raise UnsupportedOptionError("max_seconds must be > 0 and max_width >= 2")


@dataclass(frozen=True)
class Piece:
    """One segment: its text (pieces of one chunk concatenate to the chunk's text) and its time span."""

    text: str
    start: float
    end: float
    #: Word timings inside the piece (aligned chunks), else ``None``.
    words: tuple[WordTiming, ...] | None
    #: The speaker of the piece, when speakers were asked for.
    speaker: str | None = None


def is_wide(ch: str) -> bool:
    """True for characters shown two columns wide (CJK ideographs, kana, hangul, fullwidth forms): the
    characters of scripts written without spaces. The package's one wide-character test (segment widths, word
    joining, the Realtime server's deltas); public for the host adapters."""
    return unicodedata.east_asian_width(ch) in "WF"


def display_width(text: str) -> int:
    """Columns ``text`` takes on screen."""
    return sum(2 if is_wide(ch) else 1 for ch in text.strip())


def split_chunk(
    text: str,
    start: float,
    end: float,
    words: Sequence[WordTiming] | None,
    limits: SegmentLimits = SegmentLimits(),
    speaker_at: Callable[[float, float], str | None] | None = None,
) -> list[Piece]:
    """Cut one chunk's text into subtitle-sized pieces (and where the speaker changes, with ``speaker_at``).

    Args:
        text: The chunk's transcript.
        start: Start of the chunk (its first word with word timings), seconds.
        end: End of the chunk (its last word with word timings), seconds.
        words: The aligner's words of ``text`` (they concatenate to ``text``), or ``None`` to estimate
            times from the text position.
        limits: Longest and widest segment.
        speaker_at: The speaker of a span of the chunk's time (see :mod:`.speakers`): each piece is then one
            speaker's, cut at the words (timed or estimated) where the speaker changes.
    """
    if not text.strip():
        return []
    timed = bool(words)
    units = list(words) if words else _estimated_units(text, start, end)
    units = [piece for unit in units for piece in _split_long_unit(unit, limits)]
    groups: list[tuple[str | None, list[WordTiming]]] = []
    for sentence in _sentences(units):
        for group in _fit(sentence, limits):
            if speaker_at is None:
                groups.append((None, group))
            else:
                groups.extend(speaker_runs(group, lambda u: (u.start, u.end), speaker_at))
    return [
        Piece("".join(u.word for u in g), g[0].start, max(g[-1].end, g[0].start), tuple(g) if timed else None, who)
        for who, g in groups
    ]


def _estimated_units(text: str, start: float, end: float) -> list[WordTiming]:
    """Words (a run of non-space with the spaces before it; each wide character on its own) timed by their
    position in the text."""
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return []
    pieces[-1] += text[sum(len(p) for p in pieces) :]  # trailing spaces stay with the last word
    pieces = [p for raw in pieces for p in _split_wide(raw)]
    return _spread(pieces, [1.0] * len(pieces), start, end)


def estimated_words(words: Sequence[WordTiming], start: float, end: float) -> tuple[WordTiming, ...]:
    """``words`` with their texts and probabilities kept and their times estimated from their position in
    the text they concatenate to, spread over ``start``..``end`` (the rule used without an aligner)."""
    return tuple(_spread([w.word for w in words], [w.probability for w in words], start, end))


def _spread(texts: Sequence[str], probabilities: Sequence[float], start: float, end: float) -> list[WordTiming]:
    """Each text starts at ``start`` plus the span times the share of the characters before it."""
    total = max(1, sum(len(t) for t in texts))
    span = max(0.0, end - start)
    units, pos = [], 0
    for text, probability in zip(texts, probabilities, strict=True):
        a = start + span * pos / total
        pos += len(text)
        units.append(WordTiming(text, round(a, 3), round(start + span * pos / total, 3), probability))
    return units


def collapsed(words: Sequence[WordTiming], pieces: Sequence[Piece]) -> bool:
    """Whether an aligned chunk's times are degenerate: all its words at one instant, or one of its segments
    shorter than :data:`MIN_SECONDS_PER_CHARACTER` per character."""
    if not words:
        return False
    if max(w.end for w in words) <= min(w.start for w in words):
        return True
    return any(
        piece.end - piece.start < MIN_SECONDS_PER_CHARACTER * sum(not ch.isspace() for ch in piece.text)
        for piece in pieces
    )


def _split_wide(piece: str) -> list[str]:
    """Cut a run before every wide character and where wide text turns into narrow text; punctuation and
    spaces stay with what precedes them."""
    if not any(is_wide(ch) for ch in piece):
        return [piece]
    out: list[str] = []
    for ch in piece:
        if out and out[-1].strip() and not _is_punct(ch) and not ch.isspace() and (is_wide(ch) or is_wide(out[-1][-1])):
            out.append(ch)
        elif out:
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def _split_long_unit(unit: WordTiming, limits: SegmentLimits) -> list[WordTiming]:
    """A single word too wide or too long for a segment is cut into pieces with interpolated times."""
    width = display_width(unit.word)
    duration = unit.end - unit.start
    # (a word of fewer characters than the parts its duration needs cannot be cut finer than its characters)
    parts = min(max(-(-width // limits.max_width), int(duration // limits.max_seconds) + 1, 1), len(unit.word))
    if parts <= 1:
        return [unit]
    # exactly ``parts`` pieces of nearly equal length (pieces of a fixed size can come out fewer: 9 characters
    # in pieces of 3 are 3 pieces where 4 were needed, each then longer than max_seconds)
    bounds = [round(i * len(unit.word) / parts) for i in range(parts + 1)]
    chunks = [unit.word[a:b] for a, b in itertools.pairwise(bounds)]
    step = duration / len(chunks)
    return [
        WordTiming(c, round(unit.start + i * step, 3), round(unit.start + (i + 1) * step, 3), unit.probability)
        for i, c in enumerate(chunks)
    ]


def _ends_with(word: str, marks: frozenset[str]) -> bool:
    stripped = word.rstrip().rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in marks


def _sentences(units: list[WordTiming]) -> list[list[WordTiming]]:
    out: list[list[WordTiming]] = [[]]
    for i, unit in enumerate(units):
        out[-1].append(unit)
        if _ends_with(unit.word, SENTENCE_END) and i + 1 < len(units):
            out.append([])
    return [s for s in out if s]


def _fits(units: Sequence[WordTiming], limits: SegmentLimits) -> bool:
    duration = units[-1].end - units[0].start
    return duration <= limits.max_seconds and display_width("".join(u.word for u in units)) <= limits.max_width


def _fit(units: list[WordTiming], limits: SegmentLimits) -> list[list[WordTiming]]:
    """Cut recursively at the best boundary until every part fits."""
    if len(units) <= 1 or _fits(units, limits):
        return [units]
    cut = _best_cut(units)
    return _fit(units[:cut], limits) + _fit(units[cut:], limits)


def _best_cut(units: list[WordTiming]) -> int:
    """Index of the first unit of the right part: clause ends beat pauses beat plain word boundaries,
    and among equals the cut nearest the middle (by text) wins; very lopsided cuts are penalised."""
    widths = [display_width(u.word) or 1 for u in units]
    total = sum(widths)
    best, best_score, left = 1, float("-inf"), 0
    for k in range(1, len(units)):
        left += widths[k - 1]
        share = left / total
        balance = 1.0 - abs(2.0 * share - 1.0)
        gap = max(0.0, units[k].start - units[k - 1].end)
        rank = 0.0
        if _ends_with(units[k - 1].word, SENTENCE_END):
            rank = 3.0
        elif _ends_with(units[k - 1].word, CLAUSE_END):
            rank = 2.0
        rank += min(gap, 1.0) * 1.5
        if min(share, 1.0 - share) < 0.15:
            rank -= 1.0
        score = rank + balance
        if score > best_score:
            best, best_score = k, score
    return best
