"""The test suite's one fixture module (loaded by ``-p qwc_fixtures`` in pyproject.toml, for ``tests/`` and
``compat_tests/`` alike, so every session fixture is built once per run) and its shared helpers.

- Speech clips: ``tests/data/audio`` (licences in its README); a test whose clip is missing is skipped with a
  reason.
- Tiny official checkpoints (built with the official ``qwen-asr`` classes, cached across runs in pytest's
  cache folder), their conversions, and the official reference models on them.
- ``model_env``: an environment in which model names resolve to the tiny models (a mirror hub and a session
  cache); ``under_model_env`` calls any loader in it, ``tiny_whisper`` is ``load_model("base")`` in it.
- Helpers: :func:`run_cli` (the ``qwen-whisper`` command in a subprocess), :func:`install_distribution` (an
  adapter or test plugin, pip-installed offline), :func:`free_port` and :func:`server_process` (an adapter's
  server on loopback), :func:`load_official`, :data:`ALIGN_CASES`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import numpy as np
import pytest
import tiny_models

T = TypeVar("T")

#: The real speech clips the tests use (shipped with the tests; see its README.md for sources and licences).
AUDIO_DIR = Path(__file__).resolve().parent / "data" / "audio"

#: Subtitle Edit's fallback parser for whisper's console lines (SpeechToTextViewModel).
SE_LINE = re.compile(r"^\[\d\d:\d\d[.,]\d\d\d --> \d\d:\d\d[.,]\d\d\d\]  ?\S")

#: Forced-alignment cases: (clip fixture, language, transcript): English, Chinese on 20 s, mixed.
ALIGN_CASES = {
    "english": ("jfk", "English", ("And so my fellow Americans, ask not what your country can do for you, "
                                   "ask what you can do for your country.")),
    "chinese": ("zh20s", "Chinese", ("广州市房地产中介协会分析，今年上半年全市二手房成交量同比上升，"
                                   "中介机构普遍认为市场信心正在恢复，价格也将保持平稳。")),
    "mixed": ("jfk", "Chinese", "我们用Qwen3-ASR做语音识别，it's 2026年的新模型，准确率很高。"),
}  # fmt: skip


def pytest_report_header(config: pytest.Config) -> list[str]:
    import onnxruntime

    try:
        from importlib.metadata import version

        llama = version("llama-cpp-python")
    except Exception:  # noqa: BLE001
        llama = "not installed"
    return [
        f"onnxruntime {onnxruntime.__version__}, providers {onnxruntime.get_available_providers()}",
        f"llama-cpp-python {llama}",
    ]


# ------------------------------------------------------------------------------------------------ helpers
def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, *, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """``python -m qwen_whisper_compat ARGS`` in ``cwd`` with ``env`` added, UTF-8 and unbuffered, as a
    subtitle editor runs the whisper command; its output captured."""
    full_env = {**os.environ, **env, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "qwen_whisper_compat", *args], check=False,
        capture_output=True, text=True, encoding="utf-8", env=full_env, cwd=cwd, timeout=timeout,
    )  # fmt: skip


def install_distribution(path: Path) -> None:
    """pip-install the distribution at ``path`` (an adapter or a test plugin) into the running environment,
    without dependencies (they are test dependencies already) and without build isolation (hatchling is a
    test dependency), so no network is needed. Idempotent: reinstalls only when the source changed."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    stamp = Path(sys.prefix) / f".qwc-installed-{path.name}"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(path)],
        check=True,
    )
    stamp.write_text(digest.hexdigest())
    importlib.invalidate_caches()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(
    command: list[str],
    env: dict[str, str],
    log: Path,
    ready: Callable[[], bool],
    *,
    start_timeout: float = 180,
    inherit: bool = True,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess (``env`` added to this process's environment, or with ``inherit=False`` its whole
    environment; unbuffered; its stdout and stderr into ``log``), yielded once ``ready()`` is true (polled;
    ``OSError`` counts as not yet; bounded by ``start_timeout``), terminated after the block (killed if it
    does not stop within 30 s)."""
    base = dict(os.environ) if inherit else {}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env={**base, **env, "PYTHONUNBUFFERED": "1"}, stdout=out,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            text = log.read_text(encoding="utf-8", errors="replace")
            assert process.poll() is None, f"the server exited with {process.returncode}:\n{text}"
            assert time.monotonic() < deadline, f"the server did not start:\n{text}"
            try:
                if ready():
                    break
            except OSError:
                pass
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def load_official(cls, path: Path):  # type: ignore[no-untyped-def]
    """An official ``qwen_asr`` model (transformers backend, fp32, CPU) with Qwen's own pre-tokenizer.

    ``qwen-asr`` loads its processor with ``fix_mistral_regex=True``. For a checkpoint whose config.json
    was saved by transformers 4.57.3 or later (but before 5.0), transformers 4.57.6 then swaps the Qwen2
    pre-tokenizer regex for Mistral's, which splits CamelCase words (" getSupportActionBar" becomes four
    tokens instead of one). The models were trained with Qwen's regex, which llama.cpp's ``qwen2``
    pre-tokenizer and our prompt builder use, so the reference processor is reloaded without the flag.
    """
    import torch
    from transformers import AutoProcessor

    logging.getLogger("transformers").setLevel(logging.ERROR)
    model = cls.from_pretrained(str(path), dtype=torch.float32, device_map="cpu")
    model.processor = AutoProcessor.from_pretrained(str(path))
    return model


# ------------------------------------------------------------------------------------------------- audio
@pytest.fixture(scope="session")
def shared_audio() -> Path:
    """The folder of real speech clips; the tests that need it are skipped when it is not there."""
    if not (AUDIO_DIR / "jfk.flac").is_file():
        pytest.skip(f"the speech clips are not in {AUDIO_DIR} (they ship with the repository's tests)")
    return AUDIO_DIR


@pytest.fixture(scope="session")
def jfk(shared_audio: Path) -> np.ndarray:
    from qwen_whisper_compat.audio import load_audio

    return load_audio(shared_audio / "jfk.flac")


@pytest.fixture(scope="session")
def wav16k(tmp_path_factory: pytest.TempPathFactory, jfk: np.ndarray) -> Path:
    """``file.wav``: jfk.flac as a 16 kHz mono 16-bit wav, as Subtitle Edit hands audio to whisper."""
    import av

    samples = (jfk * 32767).astype(np.int16)
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


@pytest.fixture(scope="session")
def zh20s(shared_audio: Path) -> np.ndarray:
    """20 s of Mandarin: the AISHELL-1 clip repeated."""
    from qwen_whisper_compat.audio import load_audio

    return np.tile(load_audio(shared_audio / "aishell_BAC009S0724W0121.wav"), 5)[: 20 * 16000]


# ------------------------------------------------------------------------------------------- tiny models
@pytest.fixture(scope="session")
def tiny_checkpoint(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """Factory: path of a cached tiny checkpoint folder, built with the official classes on first use."""
    root = Path(request.config.cache.mkdir("qwc-tiny-checkpoints"))

    def get(variant: str, dtype: str = "bf16", seed: int = 0) -> Path:
        folder = root / tiny_models.cache_key(variant, dtype, seed)
        if not (folder / "config.json").is_file():
            tiny_models.build_checkpoint(folder, variant, dtype, seed)
        return folder

    return get


@pytest.fixture(scope="session")
def asr_ckpt(tiny_checkpoint: Callable[..., Path]) -> Path:
    return tiny_checkpoint("asr")


@pytest.fixture(scope="session")
def aligner_ckpt(tiny_checkpoint: Callable[..., Path]) -> Path:
    # seed 2: its random head spreads the slots over several classes (seed 0 puts every slot in one),
    # so the parity tests also exercise the timestamp repair
    return tiny_checkpoint("aligner", seed=2)


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: convert a checkpoint once per session and precision pair, as a user would."""
    from qwen_whisper_compat.convert import convert_checkpoint

    done: dict[tuple[Path, str, str], Path] = {}

    def get(ckpt: Path, encoder: str = "fp32", decoder: str = "f32") -> Path:
        key = (ckpt, encoder, decoder)
        if key not in done:
            out = tmp_path_factory.mktemp("model") / f"{ckpt.name}-{encoder}-{decoder}"
            convert_checkpoint(ckpt, out, encoder=encoder, decoder=decoder)
            done[key] = out
        return done[key]

    return get


@pytest.fixture(scope="session")
def official_asr(asr_ckpt: Path):  # type: ignore[no-untyped-def]
    """The official ``Qwen3ASRModel`` on the tiny bf16 checkpoint."""
    from qwen_asr import Qwen3ASRModel

    return load_official(Qwen3ASRModel, asr_ckpt)


@pytest.fixture(scope="session")
def official_aligner(aligner_ckpt: Path):  # type: ignore[no-untyped-def]
    """The official ``Qwen3ForcedAligner`` on the tiny bf16 aligner checkpoint."""
    from qwen_asr import Qwen3ForcedAligner

    return load_official(Qwen3ForcedAligner, aligner_ckpt)


# --------------------------------------------------------------------------------- model names -> tiny
@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory: pytest.TempPathFactory, asr_ckpt: Path, aligner_ckpt: Path) -> Path:
    """A folder laid out like the Hugging Face Hub (``<mirror>/Qwen/Qwen3-ASR-1.7B/...``) whose three official
    repos are the tiny checkpoints (symlinks), for ``QWEN_WHISPER_HUB_MIRROR`` or ``download.mirror_fetch``."""
    mirror = tmp_path_factory.mktemp("hub-mirror")
    (mirror / "Qwen").mkdir()
    for repo, ckpt in (("Qwen3-ASR-0.6B", asr_ckpt), ("Qwen3-ASR-1.7B", asr_ckpt),
                       ("Qwen3-ForcedAligner-0.6B", aligner_ckpt)):  # fmt: skip
        try:
            (mirror / "Qwen" / repo).symlink_to(ckpt, target_is_directory=True)
        except OSError:  # Windows without the symlink privilege
            shutil.copytree(ckpt, mirror / "Qwen" / repo)
    return mirror


@pytest.fixture(scope="session")
def model_env(tmp_path_factory: pytest.TempPathFactory, hub_mirror: Path) -> dict[str, str]:
    """Environment under which model names resolve to the tiny models: the mirror hub and a session cache."""
    cache = tmp_path_factory.mktemp("qwc-cache")
    return {"QWEN_WHISPER_HUB_MIRROR": str(hub_mirror), "QWEN_WHISPER_CACHE": str(cache)}


@pytest.fixture(scope="session")
def under_model_env(model_env: dict[str, str]) -> Callable[..., Any]:
    """Factory: ``under_model_env(loader, *args, **kwargs)`` calls a model loader (``load_model``,
    ``WhisperModel``, ...) with model names resolving to the tiny models; the caller closes what it loads."""

    def load(loader: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with mock.patch.dict(os.environ, model_env):
            return loader(*args, **kwargs)

    return load


@pytest.fixture(scope="session")
def tiny_whisper(under_model_env: Callable[..., Any]) -> Iterator[Any]:
    """``load_model("base")`` resolved through the mirror hub: the tiny ASR model with its tiny aligner."""
    import qwen_whisper_compat as whisper

    model = under_model_env(whisper.load_model, "base")
    yield model
    model.close()


# ------------------------------------------------------------------------------------------------ plugins
@pytest.fixture(autouse=True)
def _isolated_plugins() -> Iterator[None]:
    """Every test starts and ends with no plugin manager loaded (tests/test_plugins.py sets the allow-list)."""
    plugins = sys.modules.get("qwen_whisper_compat.plugins")
    if plugins is not None:
        plugins.reset_plugins()
    yield
    plugins = sys.modules.get("qwen_whisper_compat.plugins")
    if plugins is not None:
        plugins.reset_plugins()
