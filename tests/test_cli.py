"""The whisper-style CLI, run as subtitle editors run whisper (model names resolve to the tiny models
through the mirror hub)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import srt

from qwen_whisper_compat.audio import load_audio

#: Subtitle Edit's fallback parser for whisper's console lines (SpeechToTextViewModel).
SE_LINE = re.compile(r"^\[\d\d:\d\d[.,]\d\d\d --> \d\d:\d\d[.,]\d\d\d\]  ?\S")


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "qwen_whisper_compat", *args],
        capture_output=True, text=True, encoding="utf-8", env=full_env, cwd=cwd, timeout=900,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wav16k(tmp_path_factory: pytest.TempPathFactory, shared_audio: Path) -> Path:
    """A 16 kHz mono wav, as Subtitle Edit hands to whisper."""
    import av
    import numpy as np

    samples = (load_audio(shared_audio / "jfk.flac") * 32767).astype(np.int16)
    path = tmp_path_factory.mktemp("se") / "file.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_subtitle_edit_invocation(tmp_path: Path, model_env: dict[str, str], wav16k: Path) -> None:
    out = tmp_path / "D"
    proc = run_cli(["--language", "en", "--model", "turbo", "--output_dir", str(out), str(wav16k)], model_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cues = list(srt.parse((out / "file.srt").read_text(encoding="utf-8")))
    assert cues and all(c.end >= c.start for c in cues)
    lines = [line for line in proc.stdout.splitlines() if SE_LINE.match(line)]
    assert len(lines) == len(cues)  # one console line per segment, as whisper prints them
    for ext in ("txt", "vtt", "tsv", "json"):  # -f all is the default
        assert (out / f"file.{ext}").is_file()
    result = json.loads((out / "file.json").read_text(encoding="utf-8"))
    assert result["language"] == "en" and len(result["segments"]) == len(cues)


def test_failing_file_is_reported_and_skipped(tmp_path: Path, model_env: dict[str, str], wav16k: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    proc = run_cli(
        ["--model", "base", "-f", "srt", "--verbose", "False", "--language", "English", "-o", str(tmp_path),
         str(bad), str(wav16k)],
        model_env, tmp_path,
    )  # fmt: skip
    assert f"Skipping {bad} due to AudioLoadError" in proc.stderr
    assert (tmp_path / "file.srt").is_file() and not (tmp_path / "notes.srt").exists()
    assert proc.returncode == 1  # every other file was written; the status says one failed
    assert re.search(r"\d+/\d+ \[.*frames/s\]", proc.stderr)  # --verbose False: the progress bar


def test_word_options_need_word_timestamps(tmp_path: Path, wav16k: Path) -> None:
    proc = run_cli(["--max_line_width", "42", str(wav16k)], {}, tmp_path)
    assert proc.returncode == 2 and "--max_line_width requires --word_timestamps True" in proc.stderr


def test_unknown_model_and_translate_are_clear_errors(tmp_path: Path, wav16k: Path) -> None:
    proc = run_cli(["--model", "gigantic", str(wav16k)], {}, tmp_path)
    assert proc.returncode == 2 and "turbo" in proc.stderr and "qwen3-asr-1.7b" in proc.stderr
    proc = run_cli(["--task", "translate", str(wav16k)], {}, tmp_path)
    assert proc.returncode == 2 and "translate" in proc.stderr


def test_offline_first_use_fails_cleanly(tmp_path: Path, wav16k: Path) -> None:
    cache = tmp_path / "cache"
    env = {"QWEN_WHISPER_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "QWEN_WHISPER_HUB_MIRROR": ""}
    proc = run_cli(["--model", "small", "-o", str(tmp_path / "out"), str(wav16k)], env, tmp_path)
    assert proc.returncode == 1
    assert "Qwen/Qwen3-ASR-0.6B" in proc.stderr and str(cache / "checkpoints" / "Qwen3-ASR-0.6B") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "file.srt").exists()


def test_help_lists_whisper_flags_and_ours() -> None:
    proc = subprocess.run([sys.executable, "-m", "qwen_whisper_compat", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--model_dir", "--output_format", "--word_timestamps", "--max_words_per_line", "--clip_timestamps",
                 "--aligner_model", "--precision", "--context", "--align_segments"):  # fmt: skip
        assert flag in proc.stdout
