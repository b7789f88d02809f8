"""Subtitle-sized segments: where chunks are cut and how the pieces are timed."""

from __future__ import annotations

import itertools

import pytest

from qwen_whisper_compat.engine.types import WordTiming
from qwen_whisper_compat.segments import (
    MIN_SECONDS_PER_CHARACTER,
    SegmentLimits,
    collapsed,
    display_width,
    estimated_words,
    split_chunk,
)

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def timed(text: str, seconds_per_char: float = 0.06, pause_after: dict[str, float] | None = None) -> list[WordTiming]:
    """Aligner-like words of ``text`` (split at spaces), evenly timed, with optional pauses after words."""
    words, t = [], 0.0
    for i, piece in enumerate(text.split(" ")):
        word = piece if i == 0 else " " + piece
        end = t + seconds_per_char * len(piece)
        words.append(WordTiming(word, round(t, 3), round(end, 3), 0.9))
        t = end + (pause_after or {}).get(piece, 0.05)
    return words


def test_short_sentences_stay_whole_and_sentences_split() -> None:
    pieces = split_chunk("Hello there. How are you?", 0.0, 2.0, timed("Hello there. How are you?"))
    assert [p.text for p in pieces] == ["Hello there.", " How are you?"]
    assert pieces[0].end <= pieces[1].start


def test_long_sentence_is_cut_at_a_clause_near_the_middle() -> None:
    pieces = split_chunk(JFK, 0.0, 11.0, timed(JFK))
    assert [p.text for p in pieces] == [
        "And so my fellow Americans, ask not what your country can do for you,",
        " ask what you can do for your country.",
    ]
    assert "".join(p.text for p in pieces) == JFK
    assert all(p.words and "".join(w.word for w in p.words) == p.text for p in pieces)


def test_a_pause_beats_a_plain_word_boundary() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    words = timed(text, seconds_per_char=0.15, pause_after={"four": 1.2})
    pieces = split_chunk(text, 0.0, 20.0, words, SegmentLimits(max_seconds=6.0))
    assert pieces[0].text == "one two three four"
    assert all(p.end - p.start <= 6.0 for p in pieces)


def test_cjk_width_limit_and_estimated_times() -> None:
    text = ("广州市房地产中介协会分析，今年上半年全市二手房成交量同比上升，"
            "中介机构普遍认为市场信心正在恢复，价格也将保持平稳。")
    pieces = split_chunk(text, 10.0, 20.0, None, SegmentLimits(max_seconds=10.0, max_width=42))
    assert "".join(p.text for p in pieces) == text
    assert all(display_width(p.text) <= 42 for p in pieces)
    assert all(p.text.endswith(("，", "。")) for p in pieces)  # cut at clause punctuation
    assert pieces[0].start == 10.0 and pieces[-1].end == 20.0
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))  # estimated: contiguous
    assert all(p.words is None for p in pieces)


@pytest.mark.parametrize("limits", [SegmentLimits(3.0, 84), SegmentLimits(10.0, 20)])
def test_one_overlong_word_is_cut_too(limits: SegmentLimits) -> None:
    word = WordTiming("x" * 120, 0.0, 12.0, 0.5)
    pieces = split_chunk(word.word, 0.0, 12.0, [word], limits)
    assert "".join(p.text for p in pieces) == word.word
    assert all(p.end - p.start <= limits.max_seconds + 1e-6 and display_width(p.text) <= limits.max_width
               for p in pieces)  # fmt: skip
    assert len(pieces) > 1 and pieces[0].start == 0.0 and pieces[-1].end == 12.0
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))  # the word's time, shared out


def test_a_short_word_over_a_long_span_is_cut_into_as_many_pieces_as_its_time_needs() -> None:
    """9 characters over 25 s with 8 s segments: 4 pieces (pieces of a fixed 3 characters would be 3, each
    longer than 8 s)."""
    word = WordTiming(".finished", 0.0, 25.0, 0.5)
    pieces = split_chunk(word.word, 0.0, 25.0, [word], SegmentLimits(8.0, 84))
    assert "".join(p.text for p in pieces) == word.word and len(pieces) == 4
    assert all(p.end - p.start <= 8.0 + 1e-6 for p in pieces)


def test_words_at_one_instant_give_zero_length_segments_in_order() -> None:
    """The tiny random aligner's case: every word at one time; the text is still cut, times never go back."""
    words = [WordTiming(w.word, 11.0, 11.0, w.probability) for w in timed(JFK)]
    pieces = split_chunk(JFK, 11.0, 11.0, words)
    assert "".join(p.text for p in pieces) == JFK and len(pieces) == 2
    assert all(p.start == p.end == 11.0 for p in pieces)


def test_collapsed_timings_are_recognised() -> None:
    real = timed(JFK)
    assert not collapsed(real, split_chunk(JFK, 0.0, 11.0, real))
    at_once = [WordTiming(w.word, 11.0, 11.0, w.probability) for w in real]
    assert collapsed(at_once, split_chunk(JFK, 11.0, 11.0, at_once))
    # the first sentence squeezed into 50 ms, the second one properly timed
    text = "Ask not what your country can do for you. Ask what you can do for your country."
    squeezed = [WordTiming(w.word, 0.0, 0.05, w.probability) if w.start < 2.4 else w for w in timed(text)]
    pieces = split_chunk(text, 0.0, squeezed[-1].end, squeezed)
    assert pieces[0].end - pieces[0].start < MIN_SECONDS_PER_CHARACTER * len(pieces[0].text)
    assert collapsed(squeezed, pieces)
    assert not collapsed([], [])


def test_estimated_words_keep_the_words_and_spread_them_by_text_position() -> None:
    at_once = [WordTiming(w.word, 3.0, 3.0, 0.5 + i / 100) for i, w in enumerate(timed(JFK))]
    words = estimated_words(at_once, 2.0, 13.0)
    assert [w.word for w in words] == [w.word for w in at_once]
    assert [w.probability for w in words] == [w.probability for w in at_once]
    assert words[0].start == 2.0 and words[-1].end == 13.0
    assert all(a.end == b.start and a.start < a.end for a, b in itertools.pairwise(words))
    share = len(words[0].word) / len(JFK)  # a word's share of the span is its share of the characters
    assert words[0].end == pytest.approx(2.0 + 11.0 * share, abs=1e-3)


@pytest.mark.parametrize("bad", [{"max_seconds": 0}, {"max_width": 1}])
def test_bad_limits(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="max_seconds must be > 0 and max_width >= 2"):
        SegmentLimits(**bad)  # type: ignore[arg-type]
