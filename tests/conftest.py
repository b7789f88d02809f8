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
    return tiny_checkpoint("aligner")


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
    """The official ``Qwen3ASRModel`` (transformers backend, fp32) on the tiny bf16 checkpoint."""
    import torch
    from qwen_asr import Qwen3ASRModel

    logging.getLogger("transformers").setLevel(logging.ERROR)
    return Qwen3ASRModel.from_pretrained(str(asr_ckpt), dtype=torch.float32, device_map="cpu")


@pytest.fixture(scope="session")
def official_aligner(aligner_ckpt: Path):  # type: ignore[no-untyped-def]
    """The official ``Qwen3ForcedAligner`` (fp32) on the tiny bf16 aligner checkpoint."""
    import torch
    from qwen_asr import Qwen3ForcedAligner

    logging.getLogger("transformers").setLevel(logging.ERROR)
    return Qwen3ForcedAligner.from_pretrained(str(aligner_ckpt), dtype=torch.float32, device_map="cpu")
