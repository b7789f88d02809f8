"""The ONNX audio encoder: normalised log-mel ``[n_mels, T]`` -> audio embeddings ``[N, output_dim]``.

Long inputs are encoded in groups of whole 8 s attention windows. The encoder never looks across a
window, so this is exact, and it bounds memory: the convolution stem's activations grow with the input
(measured on the 0.6B shape, one call over 120 s needs 1.6 GB of working memory, over 300 s 3.7 GB; see
benchmarks/encoder_layout.py). A remainder shorter than one convolution chunk (100 frames) joins the
previous group, because the official encoder zero-pads such a last chunk only when it is not alone.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.manifest import EncoderDims
from qwen_whisper_compat.engine.modeldir import ModelDir
from qwen_whisper_compat.errors import ModelFolderError, UnsupportedOptionError

logger = logging.getLogger("qwen_whisper_compat.encoder")

INPUT_NAME = "input_features"
OUTPUT_NAME = "audio_embeds"
#: Mel frames per attention window (8 s) and per convolution chunk (1 s) of the released models.
WINDOW_FRAMES = 800
CHUNK_FRAMES = 100


def window_groups(n_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Split ``n_frames`` mel frames into groups of whole 8 s windows of at most ``max_frames`` frames.

    A remainder shorter than one convolution chunk joins the previous group.
    """
    bounds = list(range(0, n_frames, max_frames)) + [n_frames]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < CHUNK_FRAMES:
        del bounds[-2]
    return list(itertools.pairwise(bounds))


#: onnxruntime execution providers by the device names the engine accepts.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}


def select_providers(device: str = "cpu") -> list[str]:
    """onnxruntime providers for ``device`` (``cpu``, ``cuda``, ``dml``, ``coreml`` or ``auto``), CPU last.

    ``auto`` takes the first accelerator onnxruntime has; a named accelerator that is not installed is an
    error naming the package that provides it.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    device = device.lower()
    if device == "auto":
        chosen = [p for p in (PROVIDERS["cuda"], PROVIDERS["dml"], PROVIDERS["coreml"]) if p in available][:1]
    elif device in PROVIDERS:
        chosen = [] if device == "cpu" else [PROVIDERS[device]]
        if chosen and chosen[0] not in available:
            package = {"cuda": "onnxruntime-gpu", "dml": "onnxruntime-directml", "coreml": "onnxruntime (macOS)"}
            raise UnsupportedOptionError(
                f"device {device!r} needs onnxruntime's {chosen[0]}, which this install lacks "
                f"(available: {', '.join(available)}); install {package[device]}"
            )
    else:
        raise UnsupportedOptionError(f"unknown device {device!r}; use one of cpu, cuda, dml, coreml, auto")
    return [*chosen, PROVIDERS["cpu"]]


def open_session(path: str | os.PathLike[str], providers: Sequence[str] | None, threads: int) -> Any:
    """An onnxruntime session over ``path`` with the engine's options (``threads`` intra-op threads, 0 = all
    physical cores; quiet log); ModelFolderError when onnxruntime cannot load it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"]))
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFolderError(f"onnxruntime cannot load {path}: {e}") from e


class AudioEncoder:
    """One onnxruntime session over an encoder file of a model folder.

    Args:
        path: The ``encoder.*.onnx`` file.
        providers: onnxruntime execution providers in order of preference (default: CPU).
        threads: Intra-op threads (0 = onnxruntime's default, all physical cores).
        max_frames: Largest group of mel frames per session call, rounded down to whole 8 s windows.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str] | None = None,
        threads: int = 0,
        max_frames: int = 4 * WINDOW_FRAMES,
    ) -> None:
        self.path = Path(path)
        self._session = open_session(path, providers, threads)
        self.n_mels = int(self._session.get_inputs()[0].shape[0])
        self.max_frames = max(WINDOW_FRAMES, max_frames // WINDOW_FRAMES * WINDOW_FRAMES)

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        return list(self._session.get_providers())

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Encode one normalised log-mel ``[n_mels, T]`` into ``[N, output_dim]`` float32 embeddings."""
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.n_mels or mel.shape[1] < 1:
            raise ValueError(f"mel must be [{self.n_mels}, T>=1], got {mel.shape}")
        parts = [self._run(mel[:, a:b]) for a, b in self.groups(mel.shape[1])]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def groups(self, n_frames: int) -> list[tuple[int, int]]:
        """Frame ranges encoded by one session call each."""
        return window_groups(n_frames, self.max_frames)

    def _run(self, mel: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(mel)})
        assert isinstance(out, np.ndarray)
        return out


class SplitEncoder:
    """The Qwen3-ASR-GGUF layout: a static conv frontend called per 100-frame chunk, then a transformer
    backend whose additive attention-mask input receives the block-diagonal 8 s window mask (so it
    computes the released models' windowed attention, not the full attention that layout was exported
    with). Same interface as :class:`AudioEncoder`.

    One difference remains: the static frontend always sees 100 frames, so an input shorter than one
    second is zero-padded where the official encoder convolves it unpadded.
    """

    def __init__(
        self,
        frontend: str | os.PathLike[str],
        backend: str | os.PathLike[str],
        dims: EncoderDims,
        providers: Sequence[str] | None = None,
        threads: int = 0,
        max_frames: int = 4 * WINDOW_FRAMES,
    ) -> None:
        self._dims = dims
        self._front = open_session(frontend, providers, threads)
        self._back = open_session(backend, providers, threads)
        self._front_in = self._front.get_inputs()[0]
        self._dtype = np.float16 if "float16" in self._front_in.type else np.float32
        self._mask_dtype = np.float16 if "float16" in self._back.get_inputs()[1].type else np.float32
        self.n_mels = dims.n_mels
        self.max_frames = max(WINDOW_FRAMES, max_frames // WINDOW_FRAMES * WINDOW_FRAMES)

    @property
    def providers(self) -> list[str]:
        """Execution providers the sessions actually use."""
        return list(self._back.get_providers())

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Encode one normalised log-mel ``[128, T]`` into ``[N, output_dim]`` float32 embeddings."""
        if mel.ndim != 2 or mel.shape[0] != self.n_mels or mel.shape[1] < 1:
            raise ValueError(f"mel must be [{self.n_mels}, T>=1], got {mel.shape}")
        parts = [self._run(mel[:, a:b]) for a, b in window_groups(mel.shape[1], self.max_frames)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _run(self, mel: np.ndarray) -> np.ndarray:
        n = mel.shape[1]
        padded = np.zeros((mel.shape[0], -(-n // CHUNK_FRAMES) * CHUNK_FRAMES), dtype=self._dtype)
        padded[:, :n] = mel
        chunks = [
            self._front.run(None, {self._front_in.name: padded[None, :, i : i + CHUNK_FRAMES]})[0]
            for i in range(0, padded.shape[1], CHUNK_FRAMES)
        ]
        n_tok = self._dims.output_length(n)
        hidden = np.concatenate(chunks, axis=1)[:, :n_tok]
        window = np.arange(n_tok) // self._dims.window_tokens
        mask = np.where(window[:, None] == window[None, :], 0.0, -np.inf).astype(self._mask_dtype)[None, None]
        (out,) = self._back.run(None, {"hidden_states": hidden, "attention_mask": mask})
        return np.asarray(out[0], dtype=np.float32)


def load_encoder(
    model_dir: ModelDir, providers: Sequence[str] | None = None, threads: int = 0
) -> AudioEncoder | SplitEncoder:
    """The encoder of a model folder: our single graph, or the split pair of a Qwen3-ASR-GGUF folder."""
    roles = {f.role for f in model_dir.manifest.files}
    if "encoder" in roles:
        return AudioEncoder(model_dir.file_path("encoder"), providers=providers, threads=threads)
    return SplitEncoder(
        model_dir.file_path("encoder_frontend"),
        model_dir.file_path("encoder_backend"),
        model_dir.manifest.encoder,
        providers,
        threads,
    )
