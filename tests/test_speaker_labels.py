"""Speaker labels through every face, with the real diarization model (the [diarize] extra) on a two-voice
espeak-ng dialogue made here, and the tiny random ASR model: labels on segments and words, the cut at a
speaker change, the writers' prefixes, the CLI flags, and results without ``diarize`` unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dialogues import FEMALE, LINES, MALE, der, espeak_dialogue, require_espeak

import qwen_whisper_compat as whisper
from qwen_whisper_compat import WhisperModel
from qwen_whisper_compat.speakers import SpeakerMap


@pytest.fixture(scope="module")
def dialogue() -> tuple[np.ndarray, list[Any]]:
    require_espeak()
    return espeak_dialogue([(MALE if i % 2 == 0 else FEMALE, line) for i, line in enumerate(LINES[:4])])


@pytest.fixture(scope="module")
def turns(dialogue: tuple[np.ndarray, list[Any]]) -> list[Any]:
    found = whisper.diarize(dialogue[0])
    assert der(dialogue[1], found) < 0.1, found
    return found


@pytest.fixture(scope="module")
def faster(under_model_env: Any) -> Any:
    """``WhisperModel("base")`` on the tiny models; its ``.model`` is the whisper face of the same model."""
    model = under_model_env(WhisperModel, "base")
    yield model
    model.model.close()


@pytest.fixture(scope="module")
def tiny_whisper(faster: Any) -> Any:
    return faster.model


@pytest.fixture(scope="module")
def labelled(tiny_whisper: Any, dialogue: tuple[np.ndarray, list[Any]], turns: list[Any]) -> dict[str, Any]:
    return tiny_whisper.transcribe(dialogue[0], language="en", temperature=0.0, word_timestamps=True, diarize=True)


def test_every_segment_and_word_is_labelled_and_no_segment_mixes_speakers(
    labelled: dict[str, Any], turns: list[Any]
) -> None:
    segments = labelled["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    speaker_at = SpeakerMap(turns)
    for s in segments:
        assert s["words"] and all("speaker" in w for w in s["words"])
        majority = max({w["speaker"] for w in s["words"]}, key=[w["speaker"] for w in s["words"]].count)
        assert s["speaker"] == majority == speaker_at(s["start"], s["end"])
    # a turn change falls between segments: no segment has words of both sides (each side lasting the 0.3 s a run
    # needs to stand alone; a single word across the change cannot be cut)
    for change in (t["start"] for t in turns[1:]):
        for s in segments:
            before = [w for w in s["words"] if w["end"] <= change]
            after = [w for w in s["words"] if w["start"] >= change]
            both = before and after and before[-1]["end"] - before[0]["start"] >= 0.3 <= after[-1]["end"] - after[0]["start"]
            assert not both, (change, s["words"])
    assert len(segments) > len(turns) - 1


def test_faster_whisper_face_labels_segments_and_words(
    faster: Any, dialogue: tuple[np.ndarray, list[Any]], labelled: dict[str, Any]
) -> None:
    model = faster
    segments, _ = model.transcribe(dialogue[0], language="en", temperature=0.0, word_timestamps=True, diarize=True)
    got = list(segments)
    assert [s.speaker for s in got] == [s["speaker"] for s in labelled["segments"]]
    assert [[w.speaker for w in s.words or []] for s in got] == [
        [w["speaker"] for w in s["words"]] for s in labelled["segments"]]  # fmt: skip
    plain, _ = model.transcribe(dialogue[0][: 3 * 16000], language="en", temperature=0.0)
    assert all(s.speaker is None and all(w.speaker is None for w in s.words or []) for s in plain)


def test_counts_are_passed_through(tiny_whisper: Any, dialogue: tuple[np.ndarray, list[Any]]) -> None:
    result = tiny_whisper.transcribe(dialogue[0], language="en", temperature=0.0, diarize=True, max_speakers=1)
    assert {s["speaker"] for s in result["segments"]} == {"SPEAKER_00"}
    with pytest.raises(whisper.UnsupportedOptionError, match="diarize=True"):
        tiny_whisper.transcribe(dialogue[0], min_speakers=2)


def test_cli_writes_prefixed_subtitles_and_unchanged_files_without_it(
    dialogue: tuple[np.ndarray, list[Any]], model_env: dict[str, str], tmp_path: Path
) -> None:
    audio = tmp_path / "talk.wav"
    import wave

    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((dialogue[0] * 32767).astype("<i2").tobytes())
    base = [sys.executable, "-m", "qwen_whisper_compat", str(audio), "--model", "base", "--language", "en",
            "--temperature", "0", "--temperature_increment_on_fallback", "None", "--threads", "1",
            "--verbose", "False", "--output_format", "all"]  # fmt: skip
    env = {**os.environ, **model_env}
    for folder, extra in (("plain", []), ("speakers", ["--diarize", "--max_speakers", "2"])):
        done = subprocess.run([*base, *extra, "--output_dir", str(tmp_path / folder)], env=env, check=False,
                              capture_output=True, text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stderr
    plain, labelled = tmp_path / "plain", tmp_path / "speakers"
    result = json.loads((labelled / "talk.json").read_text())
    assert {s["speaker"] for s in result["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    for fmt in ("txt", "srt", "vtt", "tsv"):
        cues = [line for line in (labelled / f"talk.{fmt}").read_text().splitlines() if "SPEAKER_" in line]
        assert len(cues) == len(result["segments"]), fmt
        assert all(("\t[SPEAKER_" in c) if fmt == "tsv" else c.startswith("[SPEAKER_") for c in cues), fmt
        assert "SPEAKER" not in (plain / f"talk.{fmt}").read_text()
    assert "speaker" not in (plain / "talk.json").read_text()
    # the same text either way, only cut and labelled
    plain_text = json.loads((plain / "talk.json").read_text())["text"]
    assert result["text"].split() == plain_text.split()
    bad = subprocess.run([*base, "--min_speakers", "2", "--output_dir", str(tmp_path / "bad")], env=env,
                         check=False, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "--diarize" in bad.stderr
