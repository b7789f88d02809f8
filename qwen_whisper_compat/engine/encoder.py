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

import numpy as np

from qwen_whisper_compat.errors import ModelFolderError

logger = logging.getLogger("qwen_whisper_compat.encoder")

INPUT_NAME = "input_features"
OUTPUT_NAME = "audio_embeds"
#: Mel frames per attention window (8 s) and per convolution chunk (1 s) of the released models.
WINDOW_FRAMES = 800
CHUNK_FRAMES = 100


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
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.path = Path(path)
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=opts, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ModelFolderError(f"onnxruntime cannot load {self.path}: {e}") from e
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
        bounds = list(range(0, n_frames, self.max_frames)) + [n_frames]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] < CHUNK_FRAMES:
            del bounds[-2]
        return list(itertools.pairwise(bounds))

    def _run(self, mel: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(mel)})
        assert isinstance(out, np.ndarray)
        return out
