"""The standalone program (``packaging/build.py``, PyInstaller): built once from this checkout, then run as a
user without Python runs it: from a temporary folder, with ``PATH`` holding only the system folders, no
``PYTHONPATH`` or venv, and a fresh model cache (the bundle converts the tiny model itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import srt
from qwc_fixtures import SE_LINE, free_port, run_cli, server_process

pytestmark = [
    pytest.mark.slow,
    # the program is run as on Linux and macOS: names without .exe, PATH=/usr/bin:/bin, a symlink named whisper
    pytest.mark.skipif(os.name != "posix", reason="runs the bundle as a POSIX program (names, PATH, symlinks)"),
]

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("qwen-whisper", "whisper", "qwen-whisper-convert", "qwen-whisper-live", "qwen-whisper-server")
FORMATS = ("srt", "vtt", "txt", "json", "tsv")
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle built by the build command of the README, from this checkout, into a temporary folder."""
    out = tmp_path_factory.mktemp("bundle")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build.py"), "--dist", str(out / "dist"),
         "--work", str(out / "work")],
        capture_output=True, text=True, timeout=1500, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return out / "dist"


def program(dist: Path, layout: str) -> Path:
    return dist / "qwen-whisper" / "qwen-whisper" if layout == "onedir" else dist / "onefile" / "qwen-whisper"


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]) -> dict[str, str]:
    """The whole environment of a run: system folders only, a home and a model cache of its own."""
    home = tmp_path_factory.mktemp("home")
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home),
        "QWEN_WHISPER_HUB_MIRROR": model_env["QWEN_WHISPER_HUB_MIRROR"],
        "QWEN_WHISPER_CACHE": str(tmp_path_factory.mktemp("bundle-cache")),
    }  # fmt: skip


def run_bundle(exe: Path, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The program with ``env`` as its whole environment (nothing of this Python's), as Subtitle Edit runs it."""
    full = {**env, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, encoding="utf-8", env=full, cwd=cwd,
                          timeout=600, check=False)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(dist: Path, bare_env: dict[str, str], tmp_path: Path, command: str) -> None:
    proc = run_bundle(dist / "qwen-whisper" / command, ["--help"], bare_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    usage = "qwen-whisper" if command == "whisper" else command  # whisper is the qwen-whisper CLI
    assert proc.stdout.startswith(f"usage: {usage} "), proc.stdout[:300]


@pytest.mark.parametrize("layout", ["onedir", "onefile"])
def test_transcription_is_byte_identical_to_the_venv(
    dist: Path, bare_env: dict[str, str], model_env: dict[str, str], shared_audio: Path, tmp_path: Path, layout: str
) -> None:
    clip = tmp_path / "jfk.flac"
    clip.write_bytes((shared_audio / "jfk.flac").read_bytes())
    args = ["--model", "tiny", "--output_format", "all", "--output_dir"]
    venv = run_cli([*args, str(tmp_path / "venv"), str(clip)], model_env, tmp_path)
    assert venv.returncode == 0, venv.stderr[-3000:]
    frozen = run_bundle(program(dist, layout), [*args, str(tmp_path / "bundle"), str(clip)], bare_env, tmp_path)
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    for ext in FORMATS:
        expected = (tmp_path / "venv" / f"jfk.{ext}").read_bytes()
        assert expected.strip(), ext
        assert (tmp_path / "bundle" / f"jfk.{ext}").read_bytes() == expected, ext
    assert frozen.stdout == venv.stdout  # the same console lines (Detected language, [.. --> ..] text)


def test_convert_writes_the_same_model_folder_as_the_venv(
    dist: Path, bare_env: dict[str, str], asr_ckpt: Path, tmp_path: Path
) -> None:
    """int4 reaches onnxruntime.transformers' top-level modules (float16, onnx_model), which no hook finds."""
    args = ["--encoder", "int4", "--decoder", "q8_0", "--quiet", str(asr_ckpt)]
    console_script = Path(sys.executable).parent / "qwen-whisper-convert"
    venv = subprocess.run([str(console_script), *args, str(tmp_path / "venv")], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert venv.returncode == 0, venv.stderr[-3000:]
    frozen = run_bundle(dist / "qwen-whisper" / "qwen-whisper-convert", [*args, str(tmp_path / "bundle")], bare_env,
                        tmp_path)  # fmt: skip
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    written = sorted(p.name for p in (tmp_path / "venv").iterdir())
    assert "encoder.int4.onnx" in written and sorted(p.name for p in (tmp_path / "bundle").iterdir()) == written
    for name in written:
        assert (tmp_path / "bundle" / name).read_bytes() == (tmp_path / "venv" / name).read_bytes(), name


def test_whisper_with_subtitle_edit_arguments(
    dist: Path, bare_env: dict[str, str], wav16k: Path, tmp_path: Path
) -> None:
    """Subtitle Edit's "OpenAI Whisper" engine: ``whisper`` in the folder the user picked, run in that folder."""
    location = tmp_path / "whisper-location"
    location.mkdir()
    (location / "whisper").symlink_to(program(dist, "onedir"))
    out = tmp_path / "D"
    proc = run_bundle(location / "whisper", ["--language", "en", "--model", "turbo", "--output_dir", str(out),
                                             str(wav16k)], bare_env, location)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cues = list(srt.parse((out / "file.srt").read_text(encoding="utf-8")))
    assert cues and [line for line in proc.stdout.splitlines() if SE_LINE.match(line)]


def test_a_bad_file_is_skipped_with_status_1(
    dist: Path, bare_env: dict[str, str], wav16k: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    proc = run_bundle(dist / "qwen-whisper" / "whisper", ["--model", "base", "-f", "srt", "-o", str(tmp_path),
                                                           str(bad), str(wav16k)], bare_env, tmp_path)  # fmt: skip
    assert f"Skipping {bad} due to AudioLoadError" in proc.stderr
    assert proc.returncode == 1  # the good file is still written
    assert (tmp_path / "file.srt").is_file() and not (tmp_path / "notes.srt").exists()


def test_the_server_command_serves_the_openai_client(
    dist: Path, bare_env: dict[str, str], model_env: dict[str, str], shared_audio: Path, tmp_path: Path
) -> None:
    import openai

    port = free_port()

    def health() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return bool(answer.status == 200)

    # one seeded decode at 0.2 (0 would be whisper's fallback: six decodes on the random tiny model)
    expected = run_cli(["--model", "tiny", "--language", "en", "--temperature", "0.2",
                        "--temperature_increment_on_fallback", "None", "-f", "json", "-o", str(tmp_path),
                        str(shared_audio / "jfk.flac")], model_env, tmp_path)  # fmt: skip
    assert expected.returncode == 0, expected.stderr[-3000:]
    text = json.loads((tmp_path / "jfk.json").read_text(encoding="utf-8"))["text"].strip()
    assert text
    command = [str(dist / "qwen-whisper" / "qwen-whisper-server"), "--model", "tiny", "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    with server_process(command, bare_env, tmp_path / "server.log", health, inherit=False):
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=120)
        with (shared_audio / "jfk.flac").open("rb") as clip:
            answer = client.audio.transcriptions.create(model="tiny", file=clip, language="en", temperature=0.2)
    assert answer.text == text


def test_bundle_contents_and_size(dist: Path) -> None:
    folder = dist / "qwen-whisper"
    internal = folder / "_internal"
    info = json.loads((dist / "build-info.json").read_text(encoding="utf-8"))
    files = [p for p in internal.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert "silero_vad_16k_sequence.onnx" in names  # the VAD model, read through importlib.resources
    assert any(n.startswith(("libllama", "llama")) for n in names)  # llama.cpp's shared library
    assert any("ggml-cpu" in n for n in names)
    assert any(n.startswith(("libavcodec", "avcodec")) for n in names)  # PyAV's FFmpeg
    assert any(n.startswith("onnxruntime_pybind11_state") for n in names)
    # importlib.metadata finds the package: the plugin manager reads its entry points, --version its version
    assert list(internal.glob("qwen_whisper_compat-*.dist-info/entry_points.txt"))
    top = {p.name for p in internal.iterdir()}
    assert not top & {"torch", "transformers", "scipy", "pandas", "ray", "pyarrow", "qwen_asr", "whisper"}, top
    onedir = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    onefile = program(dist, "onefile").stat().st_size
    assert info["onedir_bytes"] == onedir and info["onefile_bytes"] == onefile
    assert info["llama_cpu_features"], "build-info.json records what llama.cpp was compiled for"
    # measured 2026-12-03: 306 MiB and 126 MiB; a bound well above that catches a dependency dragged in
    assert onedir < 450 * MIB and onefile < 200 * MIB, (onedir // MIB, onefile // MIB)
    for command in COMMANDS[1:]:
        assert (folder / command).resolve() == (folder / "qwen-whisper").resolve()
