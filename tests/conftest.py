"""Shared fixtures: tiny official checkpoints (cached across runs), their conversions, reference models."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tiny_models  # noqa: E402

SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "audio"
if not SHARED_AUDIO.is_dir():  # CI clones the project elsewhere; the clips live beside it
    SHARED_AUDIO = Path(os.environ.get("QWC_SHARED_AUDIO", "/work/shared/audio"))


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


@pytest.fixture(scope="session")
def shared_audio() -> Path:
    if not (SHARED_AUDIO / "jfk.flac").is_file():
        pytest.fail(f"real speech clips not found at {SHARED_AUDIO} (set QWC_SHARED_AUDIO)")
    return SHARED_AUDIO


@pytest.fixture(scope="session")
def jfk(shared_audio: Path) -> np.ndarray:
    from qwen_whisper_compat.audio import load_audio

    return load_audio(shared_audio / "jfk.flac")


#: Forced-alignment cases: (clip fixture, language, transcript): English, Chinese on 20 s, mixed.
ALIGN_CASES = {
    "english": ("jfk", "English", "And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country."),
    "chinese": ("zh20s", "Chinese", "广州市房地产中介协会分析，今年上半年全市二手房成交量同比上升，"
                "中介机构普遍认为市场信心正在恢复，价格也将保持平稳。"),
    "mixed": ("jfk", "Chinese", "我们用Qwen3-ASR做语音识别，it's 2026年的新模型，准确率很高。"),
}  # fmt: skip


@pytest.fixture(scope="session")
def zh20s(shared_audio: Path) -> np.ndarray:
    """20 s of Mandarin: the AISHELL-1 clip repeated."""
    from qwen_whisper_compat.audio import load_audio

    return np.tile(load_audio(shared_audio / "aishell_BAC009S0724W0121.wav"), 5)[: 20 * 16000]


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


@pytest.fixture(scope="session")
def hub_mirror(tmp_path_factory: pytest.TempPathFactory, asr_ckpt: Path, aligner_ckpt: Path) -> Path:
    """A folder laid out like the Hugging Face Hub (``<mirror>/Qwen/Qwen3-ASR-1.7B/...``) whose three official
    repos are the tiny checkpoints (symlinks), for ``QWEN_WHISPER_HUB_MIRROR`` or ``hub.mirror_fetch``."""
    mirror = tmp_path_factory.mktemp("hub-mirror")
    (mirror / "Qwen").mkdir()
    for repo, ckpt in (("Qwen3-ASR-0.6B", asr_ckpt), ("Qwen3-ASR-1.7B", asr_ckpt),
                       ("Qwen3-ForcedAligner-0.6B", aligner_ckpt)):  # fmt: skip
        (mirror / "Qwen" / repo).symlink_to(ckpt, target_is_directory=True)
    return mirror


@pytest.fixture(scope="session")
def model_env(tmp_path_factory: pytest.TempPathFactory, hub_mirror: Path) -> dict[str, str]:
    """Environment under which model names resolve to the tiny models: the mirror hub and a session cache."""
    cache = tmp_path_factory.mktemp("qwc-cache")
    return {"QWEN_WHISPER_HUB_MIRROR": str(hub_mirror), "QWEN_WHISPER_CACHE": str(cache)}


@pytest.fixture(scope="session")
def tiny_whisper(model_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``load_model("base")`` resolved through the mirror hub: the tiny ASR model with its tiny aligner."""
    from unittest import mock

    import qwen_whisper_compat as whisper

    with mock.patch.dict(os.environ, model_env):
        model = whisper.load_model("base")
    yield model
    model.close()


from collections.abc import Iterator  # noqa: E402


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
