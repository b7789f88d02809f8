"""Speaker labels from diarized turns (qwen_whisper_compat/speakers.py), the cut of segments at a speaker
change (segments.split_chunk), and the writers' WhisperX prefixes; no model needed."""

from __future__ import annotations

import io
from typing import Any

import pytest

from qwen_whisper_compat.engine.types import WordTiming
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.segments import SegmentLimits, split_chunk
from qwen_whisper_compat.speakers import SpeakerCounts, SpeakerMap, speaker_runs
from qwen_whisper_compat.utils import WRITERS

TURNS = [
    {"start": 0.0, "end": 4.0, "speaker": "SPEAKER_00"},
    {"start": 4.2, "end": 9.0, "speaker": "SPEAKER_01"},
    {"start": 12.0, "end": 15.0, "speaker": "SPEAKER_00"},
]


def test_most_overlap_then_nearest() -> None:
    speaker = SpeakerMap(list(reversed(TURNS)))  # order does not matter
    assert speaker(1.0, 2.0) == "SPEAKER_00"
    assert speaker(3.5, 5.0) == "SPEAKER_01"  # 0.5 s of 00 against 0.8 s of 01
    assert speaker(3.0, 4.5) == "SPEAKER_00"
    assert speaker(4.05, 4.15) == "SPEAKER_00"  # in the gap: the nearest turn (0.05 s away against 0.1 s)
    assert speaker(10.0, 10.2) == "SPEAKER_01"  # 1 s after 01's end, 1.8 s before 00's start
    assert speaker(11.5, 11.6) == "SPEAKER_00"
    assert speaker(20.0, 21.0) == "SPEAKER_00"  # after every turn
    assert speaker(6.0, 6.0) == "SPEAKER_01"  # an instant inside a turn
    assert SpeakerMap([])(1.0, 2.0) is None and not SpeakerMap([])


def test_a_long_early_turn_is_found_under_later_ones() -> None:
    turns = [{"start": 0.0, "end": 100.0, "speaker": "A"}, {"start": 10.0, "end": 11.0, "speaker": "B"},
             {"start": 20.0, "end": 21.0, "speaker": "B"}]  # fmt: skip
    speaker = SpeakerMap(turns)
    assert speaker(50.0, 60.0) == "A" and speaker(10.2, 10.8) == "B"


def _words(spans: list[tuple[float, float]]) -> list[WordTiming]:
    return [WordTiming(f" w{i}", start, end, 0.9) for i, (start, end) in enumerate(spans)]


def test_runs_cut_at_changes_and_short_runs_join_a_neighbour() -> None:
    words = _words([(0.0, 0.5), (0.5, 1.0), (1.0, 1.2), (4.3, 4.8), (4.8, 5.5), (5.5, 6.0)])
    runs = speaker_runs(words, lambda w: (w.start, w.end), SpeakerMap(TURNS))
    assert [(s, [w.word for w in ws]) for s, ws in runs] == [
        ("SPEAKER_00", [" w0", " w1", " w2"]), ("SPEAKER_01", [" w3", " w4", " w5"])]  # fmt: skip
    blip = _words([(0.0, 1.0), (1.0, 1.1), (1.1, 2.0)])  # 0.1 s of another speaker inside one turn
    runs = speaker_runs(blip, lambda w: (w.start, w.end), lambda s, e: "B" if s == 1.0 else "A")
    assert [(s, len(ws)) for s, ws in runs] == [("A", 3)]


def test_a_chunk_is_cut_where_the_speaker_changes() -> None:
    words = _words([(0.0, 0.5), (0.5, 1.0), (1.0, 1.5), (4.3, 4.8), (4.8, 5.5)])
    text = "".join(w.word for w in words)
    plain = split_chunk(text, 0.0, 5.5, words, SegmentLimits())
    assert len(plain) == 1 and plain[0].speaker is None
    pieces = split_chunk(text, 0.0, 5.5, words, SegmentLimits(), SpeakerMap(TURNS))
    assert [(p.text, p.speaker) for p in pieces] == [(" w0 w1 w2", "SPEAKER_00"), (" w3 w4", "SPEAKER_01")]
    assert (pieces[0].end, pieces[1].start) == (1.5, 4.3)
    # without word timings the cut falls between the estimated positions of the words
    estimated = split_chunk(text, 0.0, 8.0, None, SegmentLimits(), SpeakerMap(TURNS))
    assert [p.speaker for p in estimated] == ["SPEAKER_00", "SPEAKER_01"]
    assert "".join(p.text for p in estimated) == text


def test_speaker_counts_need_diarize() -> None:
    options: dict[str, Any] = {"diarize": True, "min_speakers": 2, "language": "en"}
    counts = SpeakerCounts.take(options)
    assert counts == SpeakerCounts(True, 2, None) and options == {"language": "en"}
    assert SpeakerCounts.take({}) == SpeakerCounts()
    with pytest.raises(UnsupportedOptionError, match="need diarize=True"):
        SpeakerCounts.take({"max_speakers": 3})


RESULT: dict[str, Any] = {
    "text": " Hello there. General Kenobi.",
    "language": "en",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.2, "text": " Hello there.", "tokens": [], "temperature": 0.0,
         "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0, "speaker": "SPEAKER_00",
         "words": [{"word": " Hello", "start": 0.0, "end": 0.5, "probability": 0.9, "speaker": "SPEAKER_00"},
                   {"word": " there.", "start": 0.5, "end": 1.2, "probability": 0.9, "speaker": "SPEAKER_00"}]},
        {"id": 1, "seek": 0, "start": 1.4, "end": 2.5, "text": " General Kenobi.", "tokens": [],
         "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0,
         "speaker": "SPEAKER_01",
         "words": [{"word": " General", "start": 1.4, "end": 1.9, "probability": 0.9, "speaker": "SPEAKER_01"},
                   {"word": " Kenobi.", "start": 1.9, "end": 2.5, "probability": 0.9, "speaker": "SPEAKER_01"}]},
    ],
}  # fmt: skip


def _write(fmt: str, result: dict[str, Any], **options: Any) -> str:
    out = io.StringIO()
    WRITERS[fmt](".").write_result(result, file=out, **options)
    return out.getvalue()


def _undiarized(result: dict[str, Any], words: bool) -> dict[str, Any]:
    segments = []
    for s in result["segments"]:
        segment = {k: v for k, v in s.items() if k not in ("speaker", "words")}
        if words:
            segment["words"] = [{k: v for k, v in w.items() if k != "speaker"} for w in s["words"]]
        segments.append(segment)
    return {**result, "segments": segments}


@pytest.mark.parametrize("words", [True, False])
def test_writers_prefix_each_cue_with_its_speaker(words: bool) -> None:
    result = RESULT
    if not words:  # speakers on the segments only
        result = {**RESULT, "segments": [{k: v for k, v in s.items() if k != "words"} for s in RESULT["segments"]]}
    assert _write("txt", result) == "[SPEAKER_00]: Hello there.\n[SPEAKER_01]: General Kenobi.\n"
    assert _write("tsv", result).splitlines()[1:] == ["0\t1200\t[SPEAKER_00]: Hello there.",
                                                      "1400\t2500\t[SPEAKER_01]: General Kenobi."]  # fmt: skip
    srt = _write("srt", result)
    assert "[SPEAKER_00]: Hello there.\n" in srt and "[SPEAKER_01]: General Kenobi.\n" in srt
    vtt = _write("vtt", result, max_line_width=80) if words else _write("vtt", result)
    cues = [line for line in vtt.splitlines() if line.startswith("[")]
    assert cues == ["[SPEAKER_00]: Hello there.", "[SPEAKER_01]: General Kenobi."]  # no cue mixes the two


@pytest.mark.parametrize("fmt", ["txt", "vtt", "srt", "tsv", "json"])
@pytest.mark.parametrize("words", [True, False])
def test_without_speakers_the_writers_are_unchanged(fmt: str, words: bool) -> None:
    """Pinned bytes of a result without speakers (the writers as openai-whisper's)."""
    plain = _undiarized(RESULT, words)
    text = _write(fmt, plain)
    assert "SPEAKER" not in text
    import whisper.utils  # the upstream writers: the same bytes

    out = io.StringIO()
    whisper.utils.get_writer(fmt, ".").write_result(plain, file=out)  # type: ignore[attr-defined]
    assert text == out.getvalue()


def test_batch_and_the_cli_take_the_speaker_flags() -> None:
    """``qwen-whisper-batch ... --diarize --max_speakers 3`` gives every worker's transcribe() the three keywords
    (the batch command shares the CLI's parser and plan); ``--diarize True`` is the same."""
    from qwen_whisper_compat import cli
    from qwen_whisper_compat.batch.cli import build_parser

    parser = build_parser()
    for flags in (["--diarize", "--max_speakers", "3"], ["--diarize", "True", "--max_speakers", "3"]):
        args = vars(parser.parse_args(["corpus", "-o", "out", *flags]))
        for name in ("workers", "threads_per_worker", "gpus_per_worker", "address", "retries"):
            args.pop(name)
        job = cli.plan(parser, args)
        assert job.transcribe["diarize"] is True and job.transcribe["max_speakers"] == 3
        assert job.transcribe["min_speakers"] is None
    args = vars(parser.parse_args(["corpus", "-o", "out"]))
    for name in ("workers", "threads_per_worker", "gpus_per_worker", "address", "retries"):
        args.pop(name)
    assert "diarize" not in cli.plan(parser, args).transcribe  # without it, nothing changes


def test_a_bare_diarize_before_the_audio_leaves_the_audio_alone() -> None:
    """argparse's optional value would take ``talk.mp3`` as ``--diarize``'s; the parser reads a bare flag as True."""
    from qwen_whisper_compat import cli

    parser = cli.build_parser()
    for argv, audio, diarize in (
        (["--diarize", "talk.mp3"], ["talk.mp3"], True),
        (["--diarize", "talk.mp3", "b.wav", "--max_speakers", "2"], ["talk.mp3", "b.wav"], True),
        (["talk.mp3", "--diarize"], ["talk.mp3"], True),
        (["--diarize", "False", "talk.mp3"], ["talk.mp3"], False),
        (["--diarize", "True", "talk.mp3"], ["talk.mp3"], True),
        (["talk.mp3"], ["talk.mp3"], False),
    ):
        args = vars(parser.parse_args(argv))
        assert (args["audio"], args["diarize"]) == (audio, diarize), argv
