"""``qwen-whisper-live`` as a user runs it: a file at real-time pace on a pseudo-terminal (the partial line
rewritten in place, never wrapping, wide characters counted as two columns; finals as whisper's lines; what
the screen shows read with a terminal emulator), a dumb terminal (finals only, no control sequence), raw PCM on a pipe into stdin
(JSON lines out), the whisper outputs of the finals in ``--output_dir``, and its errors."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import select
import struct
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyte
import pytest

from qwen_whisper_compat.live_cli import Console, _transcribe, build_parser, fit_tail, takes_ansi
from qwen_whisper_compat.segments import is_wide

CLI = [sys.executable, "-m", "qwen_whisper_compat.live_cli"]
posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals (pty) are POSIX-only")
WHISPER_LINE = re.compile(r"^\[\d\d:\d\d\.\d{3} --> \d\d:\d\d\.\d{3}\] ")


def environment(model_env: dict[str, str], term: str = "xterm-256color") -> dict[str, str]:
    return {**os.environ, **model_env, "PYTHONUTF8": "1", "PYTHONUNBUFFERED": "1", "TERM": term}


def open_terminal(columns: int, rows: int = 24) -> tuple[int, int]:
    """A pseudo-terminal (main, child) of a fixed window size."""
    import fcntl
    import pty
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return main, child


def drain(main: int, wait: float = 0.05) -> bytes:
    """What the terminal received so far (reads until nothing comes for ``wait`` seconds)."""
    out = b""
    while select.select([main], [], [], wait)[0]:
        try:
            data = os.read(main, 65536)
        except OSError:  # the other side closed
            break
        if not data:
            break
        out += data
    return out


def run_on_terminal(args: list[str], env: dict[str, str], columns: int, cwd: Path) -> tuple[int, bytes, str]:
    """Run the command with its output on a pseudo-terminal ``columns`` wide: (status, output, stderr)."""
    main, child = open_terminal(columns)
    with (cwd / "stderr.txt").open("w+b") as stderr:  # a file: a full pipe would stop the command
        proc = subprocess.Popen([*CLI, *args], stdin=subprocess.DEVNULL, stdout=child, stderr=stderr,
                                env=env, cwd=cwd)  # fmt: skip
        os.close(child)
        out = b""
        deadline = time.monotonic() + 420  # a loaded 2-core machine takes minutes for the tiny model
        while time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                try:
                    data = os.read(main, 65536)
                except OSError:  # the terminal closed: the command ended
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(main)
        stderr.seek(0)
        return proc.returncode, out, stderr.read().decode(errors="replace")


def screen_of(output: bytes, columns: int, rows: int = 24) -> list[str]:
    """The lines a terminal ``columns`` wide shows after ``output`` (trailing spaces removed)."""
    screen = pyte.Screen(columns, rows)
    pyte.ByteStream(screen).feed(output)
    return [line.rstrip() for line in screen.display]


def lines_of(lines: list[str], columns: int) -> list[str]:
    """The non-empty lines a terminal ``columns`` wide shows for ``lines`` printed one after the other (long
    ones wrap), the last screenful."""
    return [line for line in screen_of("".join(f"{line}\r\n" for line in lines).encode(), columns) if line]


# ------------------------------------------------------------------------------ the partial line's width
SENTENCE = "我们今天讨论语音识别的实时字幕，Qwen3-ASR 模型在本地运行。"


def columns_of(text: str) -> int:
    return sum(2 if is_wide(ch) else 1 for ch in text)


@pytest.mark.parametrize("columns", [1, 2, 7, 40, 41, 119])
def test_fit_tail_keeps_the_tail_that_fits(columns: int) -> None:
    for n in range(1, 3 * len(SENTENCE)):
        text = (SENTENCE * 3)[:n]
        fitted = fit_tail(text, max(columns, 2))
        assert columns_of(fitted) <= max(columns, 2)
        if fitted == text:
            assert columns_of(text) <= max(columns, 2)
            continue
        assert fitted.startswith("…") and text.endswith(fitted[1:])
        kept = len(fitted) - 1  # one more character of the text would not fit
        assert columns_of(fitted) + (2 if is_wide(text[-kept - 1]) else 1) > max(columns, 2)


def partial(text: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(type="partial", text=text)


def final(start: float, end: float, text: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(type="final", text=text, segments=[{"start": start, "end": end, "text": text}])


@posix_only
@pytest.mark.parametrize("columns", [120, 41])
def test_the_partial_line_never_wraps_on_a_terminal(columns: int) -> None:
    """Growing partials of Chinese text (two columns a character) three times the terminal's width, then its
    final, then more: after every partial the screen holds the finals and one line of partial text, its tail
    that fits; when the stream ends, the finals only. Counting characters instead of columns wraps them."""
    main, child = open_terminal(columns)
    try:
        with open(child, "w", encoding="utf-8", closefd=False) as out:
            console = Console(out, ansi=takes_ansi(out, {"TERM": "xterm"}))
            assert console.ansi and console.columns() == columns
            received = b""
            finals: list[str] = []
            text = SENTENCE * 6
            for k, n in enumerate(range(4, len(text), 7)):
                if k == 12:
                    console.event(final(0.0, 9.5, text[:n]))
                    finals.append(f"[00:00.000 --> 00:09.500] {text[:n]}")
                    text = text[n:] + SENTENCE
                console.event(partial(text[:n]))
                received += drain(main)
                screen = screen_of(received, columns)
                shown = fit_tail(" ".join(text[:n].split()), columns - 1)
                rows = len(lines_of(finals, columns))
                assert screen[rows] == shown, f"partial {k}"
                assert [line for line in screen[rows + 1 :] if line] == [], f"partial {k} wrapped or left stale lines"
            console.close()
        received += drain(main)
    finally:
        os.close(child)
        os.close(main)
    screen = screen_of(received, columns)
    assert finals and [line for line in screen if line] == lines_of(finals, columns)
    assert "\x1b[2K" in received.decode()


def test_ansi_only_on_a_terminal_that_takes_it(tmp_path: Path) -> None:
    with (tmp_path / "out.txt").open("w") as f:
        assert not takes_ansi(f, {"TERM": "xterm"})  # a file
    if os.name == "posix":
        main, child = open_terminal(80)
        try:
            with open(child, "w", closefd=False) as tty:
                assert takes_ansi(tty, {"TERM": "xterm"})
                assert not takes_ansi(tty, {"TERM": "dumb"})
        finally:
            os.close(child)
            os.close(main)


def test_a_dumb_terminal_gets_finals_only_line_by_line() -> None:
    out = io.StringIO()
    console = Console(out, ansi=False)
    console.event(partial(SENTENCE))
    console.event(final(0.0, 2.0, SENTENCE))
    console.event(partial("more"))
    console.close()
    assert out.getvalue() == f"[00:00.000 --> 00:02.000] {SENTENCE}\n"


# ------------------------------------------------------------------------------------------ end to end
PARTIAL = re.compile(rb"\r\x1b\[2K[^\r\n]*(?=\r\x1b\[2K)")  # a partial line, rewritten or cleared next


def finals_only(output: bytes) -> bytes:
    """``output`` without its partial lines and the sequences that clear them: what the finals alone show."""
    return PARTIAL.sub(b"", output).replace(b"\r\x1b[2K", b"")


@posix_only
def test_realtime_file_on_a_terminal(model_env: dict[str, str], shared_audio: Path, tmp_path: Path) -> None:
    columns = 40  # narrower than the partials: each is cut to its tail, and none wraps
    t0 = time.monotonic()
    status, output, stderr = run_on_terminal(
        [str(shared_audio / "jfk.flac"), "--realtime", "--model", "base", "--language", "en",
         "--output_dir", str(tmp_path), "--output_format", "srt"],
        environment(model_env), columns, tmp_path,
    )  # fmt: skip
    text = output.decode("utf-8", errors="replace")
    assert status == 0, stderr or text
    assert time.monotonic() - t0 >= 10.0  # 11 s of audio at real-time pace
    partials = PARTIAL.findall(output)
    assert partials  # the partial line is rewritten in place
    assert all(columns_of(p[len(b"\r\x1b[2K") :].decode("utf-8")) < columns for p in partials)
    finals = [line for line in finals_only(output).decode("utf-8").splitlines() if WHISPER_LINE.match(line)]
    assert finals and finals[0].startswith("[00:00.000 --> ")
    # what the screen shows in the end is what the finals alone show: no partial line was left behind
    assert screen_of(output, columns) == screen_of(finals_only(output), columns)
    assert any(screen_of(output, columns))
    srt = (tmp_path / "jfk.srt").read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:00,000 --> ") and srt.count(" --> ") == len(finals)


class FakeStream:
    """What ``_transcribe`` uses of a model's live stream, replaying events."""

    def __init__(self, events: list[types.SimpleNamespace]) -> None:
        self.played, self.segments = events, []

    def events(self, source: Any) -> Iterator[types.SimpleNamespace]:
        try:
            yield from self.played
        finally:
            source.close()

    def close(self) -> None:
        pass


@posix_only
@pytest.mark.parametrize("term", ["xterm", "dumb"])
def test_the_command_on_a_terminal_and_on_a_dumb_one(term: str, shared_audio: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The command's printing: ANSI partials where TERM takes them; on a dumb terminal no control sequence,
    the finals line by line."""
    events = [partial(SENTENCE * 4), final(0.0, 3.0, "第一句。"), partial(SENTENCE), final(3.0, 6.0, "第二句。")]
    model = types.SimpleNamespace(stream=lambda **kwargs: FakeStream(events))
    args = build_parser().parse_args([str(shared_audio / "jfk.flac"), "--realtime"])
    monkeypatch.setenv("TERM", term)
    main, child = open_terminal(60)
    try:
        with open(child, "w", encoding="utf-8", closefd=False) as out:
            assert _transcribe(model, args, out) == 0
        output = drain(main)
    finally:
        os.close(child)
        os.close(main)
    lines = ["[00:00.000 --> 00:03.000] 第一句。", "[00:03.000 --> 00:06.000] 第二句。"]
    assert [line for line in screen_of(output, 60) if line] == lines
    if term == "dumb":
        assert output.decode("utf-8") == "".join(f"{line}\r\n" for line in lines)
    else:
        assert len(PARTIAL.findall(output)) == 2


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
