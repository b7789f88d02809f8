"""The subtitle writers keep one cue per segment even when a segment's text holds a blank line."""

from __future__ import annotations

import io

import pytest
import srt

from qwen_whisper_compat.utils import WRITERS, cue_text

RESULT = {
    "text": "First line.\n\nSecond line. Next one.",
    "language": "en",
    "segments": [
        {"id": 0, "start": 0.0, "end": 2.0, "text": " First line.\n \n\nSecond line."},
        {"id": 1, "start": 2.0, "end": 3.5, "text": " Next one."},
    ],
}


def write(fmt: str) -> str:
    out = io.StringIO()
    WRITERS[fmt](".").write_result(RESULT, file=out)
    return out.getvalue()


def test_a_blank_line_in_a_segment_does_not_split_its_srt_cue() -> None:
    cues = list(srt.parse(write("srt")))
    assert [c.content for c in cues] == ["First line.\nSecond line.", "Next one."]
    assert [c.end.total_seconds() for c in cues] == [2.0, 3.5]


def test_a_blank_line_in_a_segment_does_not_split_its_vtt_cue() -> None:
    body = write("vtt").split("\n\n", 1)[1]  # after the WEBVTT header
    blocks = [b for b in body.split("\n\n") if b.strip()]
    assert blocks == ["00:00.000 --> 00:02.000\nFirst line.\nSecond line.", "00:02.000 --> 00:03.500\nNext one."]


@pytest.mark.parametrize("text", ["a b", "a\nb", " a\n b ", "", "a\r\nb"])
def test_text_without_blank_lines_is_unchanged(text: str) -> None:
    assert cue_text(text) == text
