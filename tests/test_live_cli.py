"""``qwen-whisper-live`` end to end, as a user runs it: a file at real-time pace on a pseudo-terminal (the
partial line rewritten in place, finals as whisper's lines), raw PCM on a pipe into stdin (JSON lines out),
the whisper outputs of the finals in ``--output_dir``, and its errors."""

from __future__ import annotations

import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CLI = [sys.executable, "-m", "qwen_whisper_compat.live_cli"]


def environment(model_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **model_env, "PYTHONUTF8": "1", "PYTHONUNBUFFERED": "1"}


def test_realtime_file_on_a_terminal(model_env: dict[str, str], shared_audio: Path, tmp_path: Path) -> None:
    main, child = pty.openpty()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, str(shared_audio / "jfk.flac"), "--realtime", "--model", "base", "--language", "en",
         "--output_dir", str(tmp_path), "--output_format", "srt"],
        stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE, env=environment(model_env), cwd=tmp_path,
    )  # fmt: skip
    os.close(child)
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(main)
    text = out.decode("utf-8", errors="replace")
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else text
    assert time.monotonic() - t0 >= 10.0  # 11 s of audio at real-time pace
    assert "\r\x1b[2K" in text  # the partial line is rewritten in place
    whisper_line = re.compile(r"^\[\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\] ")
    finals = [line for line in text.replace("\r\x1b[2K", "\n").splitlines() if whisper_line.match(line)]
    assert finals and finals[0].startswith("[00:00.000 --> ")
    srt = (tmp_path / "jfk.srt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:00,000 --> ") and srt.count(" --> ") == len(finals)


def test_pcm_on_stdin_gives_json_lines(model_env: dict[str, str], jfk: np.ndarray, tmp_path: Path) -> None:
    pcm = (np.clip(jfk, -1, 1) * 32767).astype("<i2").tobytes()
    proc = subprocess.run(
        [*CLI, "-", "--model", "base", "--output_dir", str(tmp_path), "--output_format", "all"],
        input=pcm, capture_output=True, env=environment(model_env), cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    events = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert {e["type"] for e in events} == {"partial", "final"} and events[-1]["type"] == "final"
    finals = [e for e in events if e["type"] == "final"]
    assert finals[0]["start"] == 0.0 and finals[-1]["end"] == pytest.approx(jfk.size / 16000, abs=1e-3)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(finals))
    assert any(f["segments"] for f in finals)
    assert {p.suffix for p in tmp_path.glob("stdin.*")} == {".txt", ".vtt", ".srt", ".tsv", ".json"}


def test_errors_are_one_line(model_env: dict[str, str], tmp_path: Path) -> None:
    missing = subprocess.run([*CLI, str(tmp_path / "nope.wav"), "--model", "base"], capture_output=True,
                             text=True, env=environment(model_env), timeout=300, check=False)  # fmt: skip
    assert missing.returncode == 1 and "is not a file" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "notes.txt").write_text("x")
    bad_dir = subprocess.run([*CLI, "-", "--output_dir", str(tmp_path / "notes.txt" / "out")], capture_output=True,
                             text=True, env=environment(model_env), timeout=300, check=False, input="")  # fmt: skip
    assert bad_dir.returncode == 1 and "cannot create the output folder" in bad_dir.stderr
    unknown = subprocess.run([*CLI, "-", "--model", "no-such-model"], capture_output=True, text=True,
                             env=environment(model_env), timeout=300, check=False, input="")  # fmt: skip
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr
