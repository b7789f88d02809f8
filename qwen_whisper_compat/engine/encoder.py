"""The ONNX audio encoder: normalised log-mel ``[n_mels, T]`` -> audio embeddings ``[N, output_dim]``."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qwen_whisper_compat.errors import ModelFolderError

logger = logging.getLogger("qwen_whisper_compat.encoder")

INPUT_NAME = "input_features"
OUTPUT_NAME = "audio_embeds"


class AudioEncoder:
    """One onnxruntime session over an encoder file of a model folder.

    Args:
        path: The ``encoder.*.onnx`` file.
        providers: onnxruntime execution providers in order of preference (default: CPU).
        threads: Intra-op threads (0 = onnxruntime's default, all physical cores).
    """

    def __init__(
        self, path: str | os.PathLike[str], providers: Sequence[str] | None = None, threads: int = 0
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

    @property
    def providers(self) -> list[str]:
        """Execution providers the session actually uses."""
        return list(self._session.get_providers())

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Encode one normalised log-mel ``[n_mels, T]`` into ``[N, output_dim]`` float32 embeddings."""
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.n_mels or mel.shape[1] < 1:
            raise ValueError(f"mel must be [{self.n_mels}, T>=1], got {mel.shape}")
        (out,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: mel})
        assert isinstance(out, np.ndarray)
        return out
