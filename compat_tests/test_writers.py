"""Our writers against openai-whisper's own (``whisper.utils``, 20250625): the same result gives the same bytes.

Every format is run on hand-written results and on results from a seeded generator, for every
combination of the four line options and for each way clients call a writer: ``writer(result, path)``,
``writer(result, path, options)``, ``writer(result, path, **kwargs)``, and options plus overriding kwargs.
"""

from __future__ import annotations

import copy
import io
import itertools
import math
import os
import random
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import whisper.utils as upstream

from qwen_whisper_compat import utils as ours

FORMATS = ("txt", "vtt", "srt", "tsv", "json")
SUBTITLE_FORMATS = ("vtt", "srt")
AUDIO = "/some/where/talk.final.mp3"  # need not exist; names the output "talk.final.<ext>"
OPTION_VALUES: dict[str, tuple[Any, ...]] = {
    "max_line_width": (None, 0, 1, 9, 42),
    "max_line_count": (None, 0, 1, 3),
    "highlight_words": (False, True),
    "max_words_per_line": (None, 0, 1, 4),
}
# The values that matter most, for the 200 random results (every combination of these is still run).
CORE_VALUES: dict[str, tuple[Any, ...]] = {
    "max_line_width": (None, 9, 42),
    "max_line_count": (None, 1, 3),
    "highlight_words": (False, True),
    "max_words_per_line": (None, 1, 4),
}


def combos(values: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [dict(zip(values, chosen, strict=True)) for chosen in itertools.product(*values.values())]


COMBOS = combos(OPTION_VALUES)
CORE_COMBOS = combos(CORE_VALUES)
NO_OPTIONS = COMBOS[0]
# "bare": writer(result, path); "dict": writer(result, path, options); "sparse": the same without the
# None entries; "kwargs": writer(result, path, **options); "mixed": kwargs over a dict of other values.
SHAPES = ("bare", "dict", "sparse", "kwargs", "mixed")
OPTION_SHAPES = SHAPES[1:]
# The combos each format is run with through real files (the rest run in memory through write_result).
FILE_COMBOS = [
    NO_OPTIONS,
    {**NO_OPTIONS, "max_line_width": 9},
    {**NO_OPTIONS, "max_line_count": 1},
    {**NO_OPTIONS, "max_line_width": 42, "max_line_count": 3},
    {**NO_OPTIONS, "max_line_width": 9, "max_line_count": 1, "highlight_words": True},
    {**NO_OPTIONS, "max_words_per_line": 1, "highlight_words": True},
    {**NO_OPTIONS, "max_line_width": 0, "max_line_count": 0, "max_words_per_line": 0},
]


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


def seg(start: float, end: float, text: str, words: list[tuple[str, float, float]] | None = None) -> dict[str, Any]:
    """A segment dict in whisper's key order; ``words`` only when given."""
    segment: dict[str, Any] = {
        "id": 0,
        "seek": int(start * 100),
        "start": start,
        "end": end,
        "text": text,
        "tokens": [50364, 400, 50414] if text else [],
        "temperature": 0.0,
        "avg_logprob": -0.25,
        "compression_ratio": 1.2,
        "no_speech_prob": 0.01,
    }
    if words is not None:
        segment["words"] = [{"word": w, "start": s, "end": e, "probability": 0.9} for w, s, e in words]
    return segment


def result_of(*segments: dict[str, Any], language: str = "en") -> dict[str, Any]:
    for i, segment in enumerate(segments):
        segment["id"] = i
    return {"text": "".join(s["text"] for s in segments), "segments": list(segments), "language": language}


def spaced(sentence: str, start: float, step: float) -> list[tuple[str, float, float]]:
    """Words with whisper's leading spaces, each ``step`` seconds long."""
    return [
        (f" {w}", round(start + i * step, 2), round(start + (i + 1) * step, 2)) for i, w in enumerate(sentence.split())
    ]


LONG = " ".join(f"word{i}" for i in range(60))
FIXED: dict[str, dict[str, Any]] = {
    "english": result_of(seg(0.0, 1.5, " Hello world."), seg(3725.25, 3727.0, " How are you?")),
    "chinese": result_of(seg(0.0, 2.4, "你好世界。"), seg(2.4, 5.0, "今天天气很好"), language="zh"),
    "arrow_and_tabs": result_of(seg(0.0, 1.0, " a --> b"), seg(1.0, 2.0, "\tcol1\tcol2 "), seg(2.0, 2.5, "x-->")),
    "over_one_hour": result_of(seg(3599.9995, 3600.0004, " edge"), seg(7322.5, 36000.123, " late")),
    "zero_length": result_of(seg(1.0, 2.0, " before"), seg(2.0, 2.0, ""), seg(2.0, 3.0, " after")),
    "empty": result_of(),
    "words": result_of(
        seg(0.0, 1.6, " Hi there friend", spaced("Hi there friend", 0.0, 0.5)),
        seg(2.0, 2.0, "", []),
        seg(2.0, 4.1, " And so my fellow Americans,", spaced("And so my fellow Americans,", 2.0, 0.4)),
    ),
    "words_first_empty": result_of(
        seg(0.0, 0.0, "", []), seg(0.5, 2.0, " second one", [(" second", 0.5, 1.0), (" one", 1.2, 2.0)])
    ),
    "only_empty_words": result_of(seg(0.0, 1.0, "", [])),
    "words_chinese": result_of(
        seg(0.0, 1.2, "你好，世界。", [("你", 0.0, 0.2), ("好，", 0.2, 0.5), ("世", 0.6, 0.8), ("界。", 0.8, 1.2)]),
        seg(5.0, 6.0, "再见", [("再", 5.0, 5.5), ("见", 5.5, 6.0)]),
        language="zh",
    ),
    "words_long_with_pauses": result_of(
        seg(0.0, 30.0, f" {LONG}", spaced(LONG, 0.0, 0.5)),
        seg(40.0, 44.0, " after a long pause here", spaced("after a long pause here", 40.0, 0.8)),
        seg(3700.0, 3705.0, " an hour later", spaced("an hour later", 3700.0, 1.5)),
    ),
    "words_odd_text": result_of(
        seg(
            0.0,
            3.0,
            " a --> b\tc",
            [(" a", 0.0, 0.5), (" -->", 0.5, 1.0), ("", 1.0, 1.0), ("  b\tc", 1.0, 1.5), (" x\ny", 1.5, 2.0)],
        ),
        seg(3.0, 4.0, " end", [(" end\n", 3.0, 3.0), ("\u3000全角", 3.0, 4.0)]),
    ),
    "words_wider_than_default": result_of(
        seg(0.0, 600.0, " " + "z" * 1200, [(" " + "z" * 600, 0.0, 300.0), (" " + "y" * 500, 300.0, 600.0)]),
        seg(600.0, 601.0, " short", [(" short", 600.0, 601.0)]),
    ),
    "gaps_for_highlight": result_of(
        seg(0.0, 9.0, " one two three", [(" one", 0.0, 1.0), (" two", 4.5, 5.0), (" three", 5.0004, 9.0)])
    ),
}


def random_word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCXYZéüß") for _ in range(rng.randint(1, 11)))
        return " " + letters + rng.choice(["", "", "", ",", ".", "?", "!", "...", "'s"])
    if kind < 0.8:
        return "".join(rng.choice("你好世界今天天气很好我们的时候。，") for _ in range(rng.randint(1, 3)))
    return rng.choice(
        [" -->", "-->", "", " ", "  two", " tab\there", "\tlead", " new\nline", "end\n", "\u00a0nbsp", " 42"]
    )


def random_result(seed: int) -> dict[str, Any]:
    """A result of 0-8 segments, with words (some ``[]``) in two of three results, monotonic times."""
    rng = random.Random(seed)
    with_words = rng.random() < 2 / 3
    t = rng.choice([0.0, rng.uniform(0, 5), rng.uniform(3590, 3610)])
    segments = []
    for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 8])):
        t += rng.choice([0.0, rng.uniform(0, 1), rng.uniform(3, 8)])
        words = []
        for _ in range(rng.choice([0, 1, 2, 5, 12, 25]) if rng.random() > 0.1 else 0):
            t += rng.choice([0.0, 0.0, rng.uniform(0, 0.5), rng.uniform(2.9, 6.0)])
            start = t if rng.random() < 0.3 else round(t, 2)
            t += rng.choice([0.0, rng.uniform(0.01, 1.2)])
            words.append((random_word(rng), start, t if rng.random() < 0.3 else max(start, round(t, 2))))
        text = "".join(w for w, _, _ in words) if words or rng.random() < 0.5 else random_word(rng)
        start = words[0][1] if words else t
        end = words[-1][2] if words else t + rng.choice([0.0, rng.uniform(0, 3)])
        t = max(t, end)
        segments.append(seg(start, end, text, words if with_words else None))
    result = result_of(*segments, language=rng.choice(["en", "zh", "English"]))
    if segments and rng.random() < 0.1:
        segments[0]["avg_logprob"] = math.nan
    return result


RANDOM_SEEDS = range(200)
RANDOM_RESULTS = {seed: random_result(seed) for seed in RANDOM_SEEDS}


# --------------------------------------------------------------------------------------------------
# Running both implementations
# --------------------------------------------------------------------------------------------------


def invoke(target: Callable[..., None], result: Any, where: Any, shape: str, combo: dict[str, Any]) -> None:
    """Call a writer (or its ``write_result``) the way ``shape`` names."""
    if shape == "bare":
        target(result, where)
    elif shape == "dict":
        target(result, where, combo)
    elif shape == "sparse":
        target(result, where, {k: v for k, v in combo.items() if v is not None})
    elif shape == "kwargs":
        target(result, where, **combo)
    else:  # kwargs override a dict whose values all differ; falsy kwargs defer to the dict
        rotated = {k: values[(values.index(combo[k]) + 1) % len(values)] for k, values in OPTION_VALUES.items()}
        target(result, where, rotated, **combo)


def write_both(
    tmp_path: Path, fmt: str, result: dict[str, Any], shape: str, combo: dict[str, Any]
) -> tuple[bytes, bytes]:
    """Bytes of upstream's and our file for the same call."""
    outputs = []
    for name, get_writer in (("upstream", upstream.get_writer), ("ours", ours.get_writer)):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        invoke(get_writer(fmt, str(folder)), result, AUDIO, shape, combo)
        outputs.append((folder / f"talk.final.{fmt}").read_bytes())
    return outputs[0], outputs[1]


def text_both(fmt: str, result: dict[str, Any], shape: str, combo: dict[str, Any]) -> tuple[str, str]:
    """What upstream's and our ``write_result`` write into memory for the same call."""
    texts = []
    for module in (upstream, ours):
        writer = getattr(module, f"Write{fmt.upper()}")("unused")
        buffer = io.StringIO()
        invoke(writer.write_result, result, buffer, shape, combo)
        texts.append(buffer.getvalue())
    return texts[0], texts[1]


def has_words(result: dict[str, Any]) -> bool:
    return bool(result["segments"]) and "words" in result["segments"][0]


# --------------------------------------------------------------------------------------------------
# Parity
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", FIXED)
def test_fixed_results_match_upstream(tmp_path: Path, name: str, fmt: str) -> None:
    """Through files: every shape with a few combos. In memory: every combo of every value in every shape."""
    result = FIXED[name]
    file_combos = FILE_COMBOS if fmt in SUBTITLE_FORMATS else FILE_COMBOS[-1:]  # the others ignore options
    for shape in SHAPES:
        for combo in [NO_OPTIONS] if shape == "bare" else file_combos:
            expected, actual = write_both(tmp_path, fmt, result, shape, combo)
            assert actual == expected, f"{name} {fmt} {shape} {combo} (file)"
    if fmt in SUBTITLE_FORMATS and has_words(result):
        for combo in COMBOS:
            for shape in OPTION_SHAPES:
                expected_text, actual_text = text_both(fmt, result, shape, combo)
                assert actual_text == expected_text, f"{name} {fmt} {shape} {combo}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_random_results_match_upstream(tmp_path: Path, fmt: str) -> None:
    """Every random result without options in memory; every fifth one through a file, shapes rotating."""
    offset = FORMATS.index(fmt)
    for seed in RANDOM_SEEDS:
        result = RANDOM_RESULTS[seed]
        expected, actual = text_both(fmt, result, "bare", NO_OPTIONS)
        assert actual == expected, f"seed {seed} {fmt} bare"
        if seed % len(FORMATS) == offset:
            shape = SHAPES[seed // len(FORMATS) % len(SHAPES)]
            combo = NO_OPTIONS if shape == "bare" else FILE_COMBOS[seed % len(FILE_COMBOS)]
            expected_bytes, actual_bytes = write_both(tmp_path, fmt, result, shape, combo)
            assert actual_bytes == expected_bytes, f"seed {seed} {fmt} {shape} {combo} (file)"


@pytest.mark.parametrize("half", range(2))
def test_random_results_with_word_options_match_upstream(half: int) -> None:
    """Every core combo on every random result with words, in memory; format and shape rotate, so each
    (format, combo) pair meets every shape on dozens of results."""
    for seed in RANDOM_SEEDS[half::2]:
        result = RANDOM_RESULTS[seed]
        if not has_words(result):
            continue
        for i, combo in enumerate(CORE_COMBOS):
            fmt = SUBTITLE_FORMATS[(seed + i) % 2]
            shape = OPTION_SHAPES[(seed + i) // 2 % len(OPTION_SHAPES)]
            expected, actual = text_both(fmt, result, shape, combo)
            assert actual == expected, f"seed {seed} {fmt} {shape} {combo}"


def test_writers_do_not_change_the_result(tmp_path: Path) -> None:
    for result in (FIXED["words_long_with_pauses"], FIXED["words_odd_text"], RANDOM_RESULTS[3]):
        before = copy.deepcopy(result)
        for combo in FILE_COMBOS:
            ours.get_writer("all", str(tmp_path))(result, "a.wav", combo)
        assert result == before


def test_random_results_exercise_the_word_paths() -> None:
    """The generator reaches the cases it exists for: words, empty word lists, long pauses, hours."""
    results = list(RANDOM_RESULTS.values())
    word_segments = [s for r in results for s in r["segments"] if "words" in s]
    gaps = [b["start"] - a["end"] for s in word_segments for a, b in itertools.pairwise(s["words"])]
    assert sum("words" not in r["segments"][0] for r in results if r["segments"]) > 20
    assert sum(not s["words"] for s in word_segments) > 10
    assert sum(len(s["words"]) >= 25 for s in word_segments) > 20
    assert sum(g > 3.0 for g in gaps) > 20
    assert any(s["end"] >= 3600 for r in results for s in r["segments"])


def test_all_writes_every_format_like_upstream(tmp_path: Path) -> None:
    result = FIXED["words_long_with_pauses"]
    for name, module in (("upstream", upstream), ("ours", ours)):
        (tmp_path / name).mkdir()
        module.get_writer("all", str(tmp_path / name))(result, AUDIO, {"max_line_width": 20, "max_line_count": 2})
    upstream_files = sorted(p.name for p in (tmp_path / "upstream").iterdir())
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == upstream_files
    assert upstream_files == [f"talk.final.{fmt}" for fmt in sorted(FORMATS)]
    for file_name in upstream_files:
        assert (tmp_path / "ours" / file_name).read_bytes() == (tmp_path / "upstream" / file_name).read_bytes()


def test_registered_formats_are_written_by_name_not_by_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin's format is a valid format name; "all" stays whisper's five, so outputs never surprise."""
    class WriteUpper(ours.ResultWriter):
        extension = "upper"

        def write_result(self, result: Any, file: Any, options: Any = None, **kwargs: Any) -> None:
            file.write(result["text"].upper())

    monkeypatch.setitem(ours.WRITERS, "upper", WriteUpper)
    ours.get_writer("all", str(tmp_path))(FIXED["english"], "a.wav")
    assert len(list(tmp_path.iterdir())) == len(FORMATS) and not (tmp_path / "a.upper").exists()
    ours.get_writer("upper", str(tmp_path))(FIXED["english"], "a.wav")
    assert (tmp_path / "a.upper").read_text(encoding="utf-8") == " HELLO WORLD. HOW ARE YOU?"


# --------------------------------------------------------------------------------------------------
# Known output (reference/whisper_compat.md 2.3), independent of upstream
# --------------------------------------------------------------------------------------------------

GOLDEN = {
    "txt": "Hello world.\nHow are you?\n",
    "vtt": "WEBVTT\n\n00:00.000 --> 00:01.500\nHello world.\n\n01:02:05.250 --> 01:02:07.000\nHow are you?\n\n",
    "srt": "1\n00:00:00,000 --> 00:00:01,500\nHello world.\n\n2\n01:02:05,250 --> 01:02:07,000\nHow are you?\n\n",
    "tsv": "start\tend\ttext\n0\t1500\tHello world.\n3725250\t3727000\tHow are you?\n",
}


@pytest.mark.parametrize("fmt", GOLDEN)
def test_known_output(tmp_path: Path, fmt: str) -> None:
    ours.get_writer(fmt, str(tmp_path))(FIXED["english"], "tst1")
    assert (tmp_path / f"tst1.{fmt}").read_bytes() == GOLDEN[fmt].replace("\n", os.linesep).encode()


def test_highlight_words_output(tmp_path: Path) -> None:
    result = result_of(
        seg(0.0, 1.5, " Hi there friend", [(" Hi", 0.0, 0.5), (" there", 0.5, 1.0), (" friend", 1.2, 1.5)])
    )
    ours.WriteSRT(str(tmp_path))(result, "x.wav", highlight_words=True)
    cues = (tmp_path / "x.srt").read_text(encoding="utf-8").split("\n\n")
    assert [c.split("\n", 2)[2] for c in cues if c] == [
        "<u>Hi</u> there friend",
        "Hi <u>there</u> friend",
        "Hi there friend",  # the gap 1.0-1.2 s, nothing underlined
        "Hi there <u>friend</u>",
    ]


def test_line_wrapping_output(tmp_path: Path) -> None:
    ours.WriteVTT(str(tmp_path))(FIXED["words"], "x", {"max_line_width": 12, "max_line_count": 2})
    assert (tmp_path / "x.vtt").read_text(encoding="utf-8") == (
        "WEBVTT\n\n00:00.000 --> 00:02.400\nHi there\nfriend And\n\n"
        "00:02.400 --> 00:04.000\nso my fellow\nAmericans,\n\n"
    )


def test_json_is_one_ascii_line(tmp_path: Path) -> None:
    ours.WriteJSON(str(tmp_path))(FIXED["chinese"], "zh.flac")
    data = (tmp_path / "zh.json").read_bytes()
    assert data.isascii() and b"\\u4f60" in data and b"\n" not in data


# --------------------------------------------------------------------------------------------------
# Files: naming, mode, failures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("audio_path", "file_name"),
    [("tst1", "tst1.srt"), ("a/b/c.d.mp3", "c.d.srt"), (".hidden", ".hidden.srt"), ("/x/y.WAV", "y.srt")],
)
def test_output_file_name(tmp_path: Path, audio_path: str, file_name: str) -> None:
    ours.get_writer("srt", str(tmp_path))(FIXED["english"], audio_path)
    assert [p.name for p in tmp_path.iterdir()] == [file_name]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_file_mode_like_upstream(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        upstream.WriteTXT(str(tmp_path))(FIXED["english"], "up.wav")
        ours.WriteTXT(str(tmp_path))(FIXED["english"], "ours.wav")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ours.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "up.txt").stat().st_mode)


def test_failing_writer_leaves_previous_file_and_no_temporary(tmp_path: Path) -> None:
    broken = result_of(seg(0.0, 1.0, " fine"), seg(1.0, 2.0, " also fine"))
    broken["segments"][1]["text"] = None  # fails after the first line is written
    target = tmp_path / "talk.txt"
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(AttributeError):
        ours.WriteTXT(str(tmp_path))(broken, "talk.mp3")
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["talk.txt"]


def test_failing_writer_creates_nothing(tmp_path: Path) -> None:
    """A misspelt option is a TypeError in both; upstream has already written the VTT header by then."""
    (tmp_path / "up").mkdir()
    (tmp_path / "ours").mkdir()
    with pytest.raises(TypeError):
        upstream.WriteVTT(str(tmp_path / "up"))(FIXED["english"], "a.wav", max_line_widht=3)
    with pytest.raises(TypeError):
        ours.WriteVTT(str(tmp_path / "ours"))(FIXED["english"], "a.wav", max_line_widht=3)
    assert (tmp_path / "up" / "a.vtt").read_text(encoding="utf-8") == "WEBVTT\n\n"
    assert list((tmp_path / "ours").iterdir()) == []


def test_missing_output_folder_fails_like_upstream(tmp_path: Path) -> None:
    for module in (upstream, ours):
        with pytest.raises(FileNotFoundError):
            module.get_writer("txt", str(tmp_path / "missing"))(FIXED["english"], "a.wav")


def test_unknown_format_is_a_key_error_naming_the_formats(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        upstream.get_writer("ass", str(tmp_path))
    with pytest.raises(KeyError, match="txt, vtt, srt, tsv, json, all"):
        ours.get_writer("ass", str(tmp_path))


def test_negative_time_is_rejected(tmp_path: Path) -> None:
    result = result_of(seg(-0.5, 1.0, " early"))
    with pytest.raises(AssertionError):
        upstream.format_timestamp(-0.5)
    with pytest.raises(ValueError, match="non-negative"):
        ours.WriteSRT(str(tmp_path))(result, "a.wav")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def timestamp_values() -> Iterator[float]:
    rng = random.Random(1234)
    yield from (0.0, -0.0, 0.0004999, 0.0005, 0.0015, 59.9995, 3599.9995, 3600.0, 359999.999, 1e6)
    yield from (k / 2000 for k in range(0, 20000, 7))  # exact half milliseconds: round-half-even
    yield from (rng.uniform(0, 40000) for _ in range(3000))
    yield from (round(rng.uniform(0, 8000), 2) for _ in range(3000))
    yield from range(0, 100000, 997)


def test_format_timestamp_matches_upstream() -> None:
    for seconds in timestamp_values():
        for hours, marker in ((False, "."), (True, ","), (True, "."), (False, ",")):
            assert ours.format_timestamp(seconds, hours, marker) == upstream.format_timestamp(seconds, hours, marker)
    assert ours.format_timestamp(3725.25) == "01:02:05.250"
    assert ours.format_timestamp(1.5, always_include_hours=True, decimal_marker=",") == "00:00:01,500"


@pytest.mark.parametrize("bad", [-0.001, math.nan])
def test_format_timestamp_rejects_negative_and_nan(bad: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ours.format_timestamp(bad)


def test_get_start_and_end_match_upstream() -> None:
    for result in [*FIXED.values(), *RANDOM_RESULTS.values()]:
        segments = result["segments"]
        if not segments or "words" in segments[0]:
            assert ours.get_start(segments) == upstream.get_start(segments)
            assert ours.get_end(segments) == upstream.get_end(segments)
    assert ours.get_start(FIXED["words_first_empty"]["segments"]) == 0.5
    assert ours.get_start(FIXED["only_empty_words"]["segments"]) == 0.0
    assert ours.get_end([]) is None


def test_cli_parsers_match_upstream() -> None:
    for name in ("str2bool", "optional_int", "optional_float"):
        for text in ("True", "False", "None", "3", "-2", "0.5", "1e3", "true", ""):
            try:
                expected: Any = getattr(upstream, name)(text)
            except ValueError:
                with pytest.raises(ValueError):
                    getattr(ours, name)(text)
            else:
                assert getattr(ours, name)(text) == expected and type(getattr(ours, name)(text)) is type(expected)


def test_small_helpers() -> None:
    assert ours.exact_div(480000, 160) == upstream.exact_div(480000, 160) == 3000
    with pytest.raises(ValueError):
        ours.exact_div(7, 2)
    assert ours.make_safe("héllo 你好") == upstream.make_safe("héllo 你好")
    for text in ("", "hello hello hello hello", "你好" * 50, LONG):
        assert ours.compression_ratio(text) == upstream.compression_ratio(text)


def test_public_names_cover_upstream() -> None:
    public = {n for n in vars(upstream) if not n.startswith("_") and callable(getattr(upstream, n))}
    public -= {"Callable", "List", "Optional", "TextIO"}  # typing imports
    assert public <= set(ours.__all__)
    assert set(ours.__all__) <= set(vars(ours))


def test_words_on_some_segments_only_fail_like_upstream(tmp_path: Path) -> None:
    """Upstream needs ``words`` on every segment once the first has them (a drop-in emits all or none)."""
    result = result_of(seg(0.0, 1.0, " a", [(" a", 0.0, 1.0)]), seg(1.0, 2.0, " b"))
    for module in (upstream, ours):
        with pytest.raises(KeyError):
            module.WriteSRT(str(tmp_path)).write_result(result, io.StringIO())


def test_modules_import_light() -> None:
    probe = (
        "import sys, qwen_whisper_compat.utils, qwen_whisper_compat.tokenizer\n"
        "print(','.join(m for m in ('torch', 'onnxruntime', 'llama_cpp', 'whisper', 'tiktoken') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
