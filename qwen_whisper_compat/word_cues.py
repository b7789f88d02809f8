"""How whisper turns word timings into subtitle cues: the line options (``max_line_width``, ``max_line_count``,
``max_words_per_line``, ``highlight_words``) and the packing of words into lines and cues, exactly as
openai-whisper 20250625's ``SubtitlesWriter.iterate_result`` does (used by :mod:`.utils`' SRT and VTT writers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: One subtitle cue: formatted start, formatted end, text.
Cue = tuple[str, str, str]

# A word is underlined inside its leading whitespace; like upstream's pattern, "." stops at a newline, so a
# word with a newline in its middle is left as it is.
_UNDERLINE = re.compile(r"^(\s*)(.*)$")
# Word-level subtitles start a new cue after a pause longer than this (seconds), when lines are capped.
_LONG_PAUSE = 3.0
# What upstream substitutes for an absent max_line_width / max_words_per_line: "no limit" in practice.
_NO_LIMIT = 1000


@dataclass(frozen=True)
class LineOptions:
    """The word-level line options after upstream's defaulting."""

    #: Characters per line.
    max_line_width: int
    #: Lines per cue; ``None`` = one cue per segment, lines unlimited.
    max_line_count: int | None
    #: Words per chunk of a segment; each chunk opens a new cue, but only while segments are preserved.
    max_words_per_line: int
    #: One cue per word with that word underlined.
    highlight_words: bool
    #: Each segment starts a new cue (unless both width and count were given).
    preserve_segments: bool

    @classmethod
    def resolve(
        cls,
        options: Mapping[str, Any] | None,
        max_line_width: int | None,
        max_line_count: int | None,
        highlight_words: bool,
        max_words_per_line: int | None,
    ) -> LineOptions:
        """Merge keywords over the options dict as upstream does: a falsy keyword (0, False) defers to it.

        Raises:
            ValueError: ``max_words_per_line`` is negative (upstream loops forever there).
        """
        options = options or {}
        width = max_line_width or options.get("max_line_width")
        count = max_line_count or options.get("max_line_count")
        highlight = highlight_words or options.get("highlight_words", False)
        words_per_line = max_words_per_line or options.get("max_words_per_line") or _NO_LIMIT
        if words_per_line < 0:
            raise ValueError(f"max_words_per_line must be positive, got {words_per_line}")
        return cls(
            max_line_width=width or _NO_LIMIT,
            max_line_count=count,
            max_words_per_line=words_per_line,
            highlight_words=bool(highlight),
            # decided on the merged values, before the width falls back to its default
            preserve_segments=count is None or width is None,
        )


class _WordPacker:
    """Packs word timings into cues of lines, one word at a time, the way upstream wraps them."""

    def __init__(self, options: LineOptions, first_start: float) -> None:
        self.options = options
        self.cue: list[dict[str, Any]] = []
        self.line_len = 0
        self.line_count = 1
        self.last_start = first_start

    def add(self, word: Mapping[str, Any], starts_chunk: bool) -> list[dict[str, Any]] | None:
        """Add one word; return the finished cue when this word opens a new one.

        A word that continues a line keeps its text; a word that opens a line is stripped, and one that
        opens a line inside the current cue is prefixed with a newline.
        """
        opts = self.options
        timing = dict(word)
        long_pause = not opts.preserve_segments and timing["start"] - self.last_start > _LONG_PAUSE
        has_room = self.line_len + len(timing["word"]) <= opts.max_line_width
        segment_break = starts_chunk and len(self.cue) > 0 and opts.preserve_segments
        finished = None
        if self.line_len > 0 and has_room and not long_pause and not segment_break:
            self.line_len += len(timing["word"])
        else:
            timing["word"] = timing["word"].strip()
            cue_full = opts.max_line_count is not None and (long_pause or self.line_count >= opts.max_line_count)
            if (len(self.cue) > 0 and cue_full) or segment_break:
                finished, self.cue, self.line_count = self.cue, [], 1
            elif self.line_len > 0:
                self.line_count += 1
                timing["word"] = "\n" + timing["word"]
            self.line_len = len(timing["word"].strip())
        self.cue.append(timing)
        self.last_start = timing["start"]
        return finished


def pack_words(
    segments: Sequence[Mapping[str, Any]], options: LineOptions, first_start: float
) -> Iterator[list[dict[str, Any]]]:
    """The word-level cues, as lists of word timings whose ``word`` texts join to the cue text."""
    # ``first_start`` (whisper's get_start) never ends a cue: the first word cannot; computing it fails like
    # upstream (KeyError) when a segment before the first word has no "words".
    packer = _WordPacker(options, first_start)
    step = options.max_words_per_line
    for segment in segments:
        words = segment["words"]
        for chunk_start in range(0, len(words), step):
            for i, word in enumerate(words[chunk_start : chunk_start + step]):
                finished = packer.add(word, starts_chunk=i == 0)
                if finished is not None:
                    yield finished
    if packer.cue:
        yield packer.cue


def _underline(word: str) -> str:
    """``word`` with its text (not its leading whitespace) wrapped in ``<u>…</u>``."""
    return _UNDERLINE.sub(r"\1<u>\2</u>", word)


def highlighted(cue: list[dict[str, Any]], timestamp: Callable[[float], str]) -> Iterator[Cue]:
    """One cue per word with that word underlined, plus a plain cue over each gap between words."""
    words = [timing["word"] for timing in cue]
    plain = "".join(words)
    last = timestamp(cue[0]["start"])
    for i, timing in enumerate(cue):
        start, end = timestamp(timing["start"]), timestamp(timing["end"])
        if last != start:
            yield last, start, plain
        yield start, end, "".join(words[:i] + [_underline(words[i])] + words[i + 1 :])
        last = end
