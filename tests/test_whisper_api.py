"""The openai-whisper surface on the tiny models: load_model by name, transcribe keywords, result dict,
model attributes, detect_language/decode, subtitle-sized segments, and the offline first use."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qwen_whisper_compat as whisper
from qwen_whisper_compat.errors import ModelNotAvailableError, UnsupportedOptionError
from qwen_whisper_compat.segments import display_width

SEGMENT_KEYS = ["id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                "compression_ratio", "no_speech_prob"]  # fmt: skip


def check_segments(result: dict[str, Any], duration: float, max_seconds: float = 10.0, max_width: int = 84) -> None:
    """Subtitle-sized, monotonic, inside the audio; text == joined segment texts."""
    segments = result["segments"]
    assert result["text"] == "".join(s["text"] for s in segments)
    previous_end = 0.0
    for i, s in enumerate(segments):
        assert s["id"] == i
        assert 0.0 <= s["start"] <= s["end"] <= duration + 1e-6, s
        assert s["start"] >= previous_end - 1e-6, (i, s["start"], previous_end)
        assert s["end"] - s["start"] <= max_seconds + 1e-6, s
        assert display_width(s["text"]) <= max_width, s["text"]
        previous_end = s["end"]


@pytest.fixture
def spread_aligner(tiny_whisper: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny random aligner puts every word of a chunk at one instant, which makes every duration check on
    aligned segments vacuous: time the words evenly over the chunk instead (the segmenter is what is tested)."""
    from qwen_whisper_compat.segments import _estimated_units

    def align(audio: np.ndarray, text: str, language: str, offset: float = 0.0, priority: int = 1) -> list[Any]:
        return _estimated_units(text, offset, offset + len(audio) / 16000)

    monkeypatch.setattr(tiny_whisper.recognizer.transcriber.aligner, "align", align)


@pytest.fixture(scope="module")
def two_minutes(shared_audio: Path) -> np.ndarray:
    """2 minutes of real speech: the English and Mandarin clips with short pauses between them."""
    names = ("jfk.flac", "librispeech_1995-1837-0001.wav", "aishell_BAC009S0724W0121.wav", "hotwords.mp3")
    clips = [whisper.load_audio(shared_audio / name) for name in names]
    parts: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    while sum(len(p) for p in parts) < 120 * 16000:
        parts.append(clips[len(parts) % len(clips)])
        parts.append(np.zeros(int(rng.uniform(0.2, 1.5) * 16000), np.float32))
    return np.concatenate(parts)[: 120 * 16000]


def test_result_dict_shape(tiny_whisper: Any, jfk: np.ndarray) -> None:
    result = whisper.transcribe(tiny_whisper, jfk, language="en", temperature=0.0)
    assert list(result) == ["text", "segments", "language"]
    assert result["language"] == "en"
    assert result["segments"], "the tiny model always says something"
    for s in result["segments"]:
        assert list(s) == SEGMENT_KEYS  # no "words" unless asked
        assert isinstance(s["tokens"], list) and all(isinstance(t, int) for t in s["tokens"])
        assert s["text"][0] == " " or display_width(s["text"][0]) == 2  # whisper's leading space, none for CJK
    check_segments(result, len(jfk) / 16000)


def test_word_timestamps_on_every_segment(tiny_whisper: Any, jfk: np.ndarray) -> None:
    result = tiny_whisper.transcribe(jfk, language="English", word_timestamps=True, temperature=0.0)
    assert result["language"] == "English"  # the caller's string, as whisper
    for s in result["segments"]:
        assert "".join(w["word"] for w in s["words"]) == s["text"]
        assert s["start"] == s["words"][0]["start"] and s["end"] == s["words"][-1]["end"]
        for w in s["words"]:
            assert list(w) == ["word", "start", "end", "probability"]
            assert w["start"] <= w["end"] and 0.0 <= w["probability"] <= 1.0
    check_segments(result, len(jfk) / 16000)


@pytest.mark.parametrize("align", [True, False], ids=["aligner", "quiet-points"])
def test_two_minute_clip_segments_stay_small(
    tiny_whisper: Any, two_minutes: np.ndarray, align: bool, spread_aligner: None
) -> None:
    # the random tiny model writes ~100 characters per second of audio, and how many depends on the CPU's
    # kernels; a token cap keeps the text of a chunk to a few segments, so their durations can be seen
    result = tiny_whisper.transcribe(
        two_minutes, language="en", temperature=0.0, align_segments=align, segment_max_seconds=8.0, sample_len=32
    )
    assert len(result["segments"]) >= 15  # 120 s cut into pieces of at most 8 s
    check_segments(result, 120.0, max_seconds=8.0)
    assert max(s["end"] - s["start"] for s in result["segments"]) > 2.0  # real durations, not collapsed ones


def test_collapsed_aligner_times_fall_back_to_estimates(
    tiny_whisper: Any, two_minutes: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    """The tiny random aligner puts every word of a chunk at one instant (the real one does it on some inputs):
    those chunks are timed as without an aligner, so no subtitle has zero length and words do not pile up."""
    with caplog.at_level(logging.DEBUG, logger="qwen_whisper_compat.recognizer"):
        result = tiny_whisper.transcribe(
            two_minutes[: 45 * 16000], language="en", temperature=0.0, word_timestamps=True
        )
    assert len(result["segments"]) >= 4
    check_segments(result, 45.0)
    for s in result["segments"]:
        assert s["end"] > s["start"], s
        assert s["words"][-1]["end"] > s["words"][0]["start"], s["words"]
        assert all(w["start"] <= w["end"] for w in s["words"])
        assert "".join(w["word"] for w in s["words"]) == s["text"]
    assert "estimating the times from the text" in caplog.text


def test_language_detection_reports_a_whisper_code(tiny_whisper: Any, jfk: np.ndarray) -> None:
    result = tiny_whisper.transcribe(jfk, temperature=0.0)
    assert result["language"] in tiny_whisper.languages  # one of the model's languages, as a whisper code


def test_keyword_handling(tiny_whisper: Any, jfk: np.ndarray) -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        tiny_whisper.transcribe(jfk, no_such_option=1)
    with pytest.raises(UnsupportedOptionError, match="translate"):
        tiny_whisper.transcribe(jfk, task="translate")
    with pytest.raises(UnsupportedOptionError, match="unsupported language"):
        tiny_whisper.transcribe(jfk, language="xx")
    from qwen_whisper_compat import options

    options._warned.discard("beam_size")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_whisper.transcribe(jfk[:16000], language="en", temperature=0.0, beam_size=5, best_of=None)
        tiny_whisper.transcribe(jfk[:16000], language="en", temperature=0.0, beam_size=5)
    beam = [w for w in caught if "beam_size" in str(w.message)]
    assert len(beam) == 1  # warned once per process, never silently dropped


@contextlib.contextmanager
def reported_here(entry: str) -> Iterator[None]:
    """The block warns about an ignored option (first use in this process), and the warning names this file."""
    from qwen_whisper_compat import options

    options._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    ignored = [w for w in caught if "qwen_whisper_compat ignores" in str(w.message)]
    assert ignored, entry
    assert {Path(w.filename) for w in ignored} == {Path(__file__)}, (entry, [w.filename for w in ignored])


def test_ignored_option_warnings_point_at_the_callers_line(
    tiny_whisper: Any, model_env: dict[str, str], jfk: np.ndarray
) -> None:
    """Each entry point reports an ignored option at the line that passed it, not inside this package (the
    calls are made right here, not through a helper, so that the reported frame must be this test's)."""
    from unittest import mock

    from qwen_whisper_compat import WhisperModel

    second = jfk[:16000]
    mel = whisper.log_mel_spectrogram(second, tiny_whisper.dims.n_mels)
    with reported_here("transcribe()"):
        whisper.transcribe(tiny_whisper, second, language="en", temperature=0.0, beam_size=2)
    with reported_here("model.transcribe"):
        tiny_whisper.transcribe(second, language="en", temperature=0.0, beam_size=2)
    with reported_here("decode"):
        whisper.decode(tiny_whisper, mel, whisper.DecodingOptions(language="en", beam_size=2))
    with reported_here("model.decode"):
        tiny_whisper.decode(mel, language="en", beam_size=2)
    with mock.patch.dict(os.environ, model_env), reported_here("WhisperModel(...)"):
        faster = WhisperModel("tiny", num_workers=2)
    try:
        with reported_here("WhisperModel.transcribe"):
            faster.transcribe(second, language="en", beam_size=2)
    finally:
        faster.model.close()


def test_clip_timestamps_limit_the_segments(tiny_whisper: Any, jfk: np.ndarray) -> None:
    result = tiny_whisper.transcribe(
        jfk, language="en", temperature=0.0, clip_timestamps="2,5.5,8", align_segments=False
    )
    clips = {200: (2.0, 5.5), 800: (8.0, 11.0)}  # seek (10 ms frames) of each clip -> its span in the input
    assert {s["seek"] for s in result["segments"]} == set(clips)
    for seek, (start, end) in clips.items():
        inside = [s for s in result["segments"] if s["seek"] == seek]
        assert all(start <= s["start"] <= s["end"] <= end for s in inside), inside
        assert inside[0]["start"] == pytest.approx(start) and inside[-1]["end"] == pytest.approx(end)


def test_model_attributes_and_low_level_calls(tiny_whisper: Any, jfk: np.ndarray) -> None:
    assert tiny_whisper.to("cpu") is tiny_whisper and tiny_whisper.cuda() is tiny_whisper
    assert tiny_whisper.device == "cpu" and tiny_whisper.device.type == "cpu"
    assert tiny_whisper.dims.n_mels == 128
    assert tiny_whisper.is_multilingual and tiny_whisper.num_languages == len(tiny_whisper.recognizer.languages)
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(jfk), tiny_whisper.dims.n_mels)
    assert mel.shape == (128, 3000)
    code, probs = tiny_whisper.detect_language(mel)
    assert code == max(probs, key=probs.get) and abs(sum(probs.values()) - 1.0) < 1e-6
    assert set(probs) <= set(whisper.tokenizer.LANGUAGES)
    decoded = tiny_whisper.decode(mel, whisper.DecodingOptions(language="en", fp16=False))
    assert isinstance(decoded, whisper.DecodingResult) and decoded.language == "en" and decoded.text
    batch = whisper.decode(tiny_whisper, np.stack([mel, mel]), language="en")
    assert [r.text for r in batch] == [decoded.text] * 2
    with pytest.raises(UnsupportedOptionError, match="n_mels"):
        tiny_whisper.detect_language(whisper.log_mel_spectrogram(jfk[:16000]))  # whisper's default 80 bins


def test_empty_audio_gives_no_segments(tiny_whisper: Any) -> None:
    result = tiny_whisper.transcribe(np.zeros(0, np.float32), language="en")
    assert result["segments"] == [] and result["text"] == ""


def test_word_timestamps_without_aligner_is_a_clear_error(under_model_env: Any, jfk: np.ndarray) -> None:
    model = under_model_env(whisper.load_model, "base", aligner=False)
    try:
        with pytest.raises(UnsupportedOptionError, match="aligner"):
            model.transcribe(jfk, word_timestamps=True)
        result = model.transcribe(jfk, language="en", temperature=0.0)  # segments cut at quiet points instead
        check_segments(result, len(jfk) / 16000)
    finally:
        model.close()


def test_offline_first_use_names_checkpoint_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QWEN_WHISPER_HUB_MIRROR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotAvailableError) as info:
        whisper.load_model("turbo", download_root=str(cache))
    message = str(info.value)
    assert "Qwen/Qwen3-ASR-1.7B" in message
    assert str(cache / "checkpoints" / "Qwen3-ASR-1.7B") in message
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.parent.name != ".locks"] if cache.exists() else []
    assert leftovers == []
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())


SCRIPT = """
import os
import whisper

model = whisper.load_model("base")
result = model.transcribe("{audio}", fp16=False, language="en", verbose=False, word_timestamps=True,
                          initial_prompt="President Kennedy's inaugural address.")
os.makedirs("{out}/all", exist_ok=True)
for fmt in ["txt", "vtt", "srt", "tsv", "json"]:
    writer = whisper.utils.get_writer(fmt, "{out}")
    writer(result, "{audio}", {{"max_line_width": None, "max_line_count": None, "highlight_words": False}})
all_writer = whisper.utils.get_writer("all", "{out}/all")
all_writer(result, "{audio}", max_line_width=42, max_line_count=2, highlight_words=True)
print(sorted(whisper.tokenizer.LANGUAGES.keys())[:3], len(whisper.tokenizer.LANGUAGES))
print(whisper.tokenizer.TO_LANGUAGE_CODE["english"], result["language"], len(result["segments"]))
"""


def test_an_openai_whisper_script_runs_after_replacing_the_import(
    tmp_path: Path, model_env: dict[str, str], tiny_whisper: Any, shared_audio: Path
) -> None:
    audio = tmp_path / "speech.flac"
    shutil.copy(shared_audio / "jfk.flac", audio)
    source = textwrap.dedent(SCRIPT.format(audio=audio, out=tmp_path / "out"))
    assert source.count("import whisper\n") == 1
    script = tmp_path / "script.py"
    script.write_text(source.replace("import whisper\n", "import qwen_whisper_compat as whisper\n"))
    env = {**os.environ, **model_env}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-2] == "['af', 'am', 'ar'] 100"
    assert lines[-1].startswith("en en ")
    for ext in ("txt", "vtt", "srt", "tsv", "json"):
        assert (tmp_path / "out" / f"speech.{ext}").stat().st_size > 0
        assert (tmp_path / "out" / "all" / f"speech.{ext}").stat().st_size > 0
    assert re.search(r"\d+/\d+ \[.*frames/s\]", proc.stderr)  # verbose=False shows whisper's progress bar


def test_keywords_reach_the_engine(tiny_whisper: Any, jfk: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """whisper's keywords (and ours) become the engine's options, not warnings."""
    seen: list[Any] = []

    def fake_segments(samples: np.ndarray, run: Any, on_progress: Any = None) -> Any:
        seen.append(run)
        return iter(())

    monkeypatch.setattr(tiny_whisper.recognizer, "segments", fake_segments)
    monkeypatch.setattr(tiny_whisper.recognizer, "language_probs", lambda samples: {"en": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these is ignored
        tiny_whisper.transcribe(
            jfk, language="de", temperature=(0.0, 0.5), compression_ratio_threshold=2.0, logprob_threshold=-2.0,
            no_speech_threshold=0.5, condition_on_previous_text=False, initial_prompt="Kennedy",
            context="JFK, Americans", sample_len=99, clip_timestamps=[1.0, 3.0], segment_max_seconds=6,
            segment_max_width=40, align_segments=False,
        )  # fmt: skip
    run = seen[0]
    assert run.language == "de" and run.temperatures == (0.0, 0.5)
    assert (run.compression_ratio_threshold, run.logprob_threshold, run.no_speech_threshold) == (2.0, -2.0, 0.5)
    assert run.context == "JFK, Americans\nKennedy" and run.carry_context and not run.carry_previous
    assert run.max_new_tokens == 99 and run.clips == ((1.0, 3.0),)
    assert (run.limits.max_seconds, run.limits.max_width, run.align_segments) == (6.0, 40, False)


def test_vad_filter_transcribes_only_speech_on_the_original_timeline(tiny_whisper: Any, jfk: np.ndarray) -> None:
    """``vad_filter=True`` (servers and PeerTube's command line): silence before the speech is not transcribed,
    times stay the input's, ``on_segment`` sees each segment, and silence alone gives no segment."""
    audio = np.concatenate([np.zeros(4 * 16000, np.float32), jfk[: 5 * 16000]])
    seen: list[Any] = []
    result = tiny_whisper.transcribe(audio, language="en", temperature=0.0, vad_filter=True, on_segment=seen.append)
    assert result["segments"] and result["segments"][0]["start"] >= 3.5
    assert seen == result["segments"]
    silent = tiny_whisper.transcribe(np.zeros(3 * 16000, np.float32), language="en", vad_filter=True)
    assert silent == {"text": "", "segments": [], "language": "en"}
    with pytest.raises(whisper.UnsupportedOptionError, match="cannot be combined"):
        tiny_whisper.transcribe(audio, vad_filter=True, clip_timestamps="1,2")
