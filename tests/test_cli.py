"""The whisper-style CLI, run as subtitle editors run whisper (model names resolve to the tiny models
through the mirror hub)."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import srt
from qwc_fixtures import SE_LINE, run_cli


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


def test_a_folder_given_as_audio_is_skipped_as_a_folder(
    tmp_path: Path, model_env: dict[str, str], wav16k: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    out = tmp_path / "out"
    proc = run_cli(["--model", "base", "-f", "txt", "--language", "en", "-o", str(out), str(folder), str(wav16k)],
                   model_env, tmp_path)  # fmt: skip
    assert f"Skipping {folder} due to AudioLoadError: '{folder}' is a folder, not an audio file" in proc.stderr
    assert (out / "file.txt").is_file() and proc.returncode == 1


def test_an_output_folder_that_cannot_be_made_is_a_one_line_error(
    tmp_path: Path, model_env: dict[str, str], wav16k: Path
) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the output folder would go")
    proc = run_cli(["--model", "base", "-o", str(blocker / "subs"), str(wav16k)], model_env, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qwen-whisper: error: cannot create the output folder"), lines
    assert f"'{blocker}' is a file, not a folder" in lines[0]


def test_any_failure_of_one_file_skips_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As whisper's CLI: whatever one file raises (here a bug's KeyError) is reported, and the next file is done."""
    import logging

    from qwen_whisper_compat import cli

    model_module = importlib.import_module("qwen_whisper_compat.model")
    transcribe_module = importlib.import_module("qwen_whisper_compat.transcribe")  # the package's is the function

    class Loaded:
        closed = False

        def close(self) -> None:
            self.closed = True

    loaded = Loaded()
    segment = {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Hello.", "tokens": [1], "temperature": 0.0,
               "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0}  # fmt: skip

    def transcribe(model: Any, audio: str, **options: Any) -> dict[str, Any]:
        if audio.endswith("broken.wav"):
            raise KeyError("a bug deep inside")
        return {"text": " Hello.", "segments": [segment], "language": "en"}

    monkeypatch.setattr(model_module, "load_model", lambda *args, **kwargs: loaded)
    monkeypatch.setattr(transcribe_module, "transcribe", transcribe)
    try:
        status = cli.main(["--model", "base", "-f", "srt", "-o", str(tmp_path), "broken.wav", "good.wav"])
    finally:
        logging.getLogger("qwen_whisper_compat.hub").setLevel(logging.NOTSET)
    assert "Skipping broken.wav due to KeyError: 'a bug deep inside'" in capsys.readouterr().err
    assert (tmp_path / "good.srt").read_text(encoding="utf-8").startswith("1\n00:00:00,000 --> 00:00:01,500\nHello.")
    assert not (tmp_path / "broken.srt").exists()
    assert status == 1 and loaded.closed


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
    proc = subprocess.run([sys.executable, "-m", "qwen_whisper_compat", "--help"], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0
    for flag in ("--model_dir", "--output_format", "--word_timestamps", "--max_words_per_line", "--clip_timestamps",
                 "--aligner_model", "--precision", "--context", "--align_segments"):  # fmt: skip
        assert flag in proc.stdout
