"""Synthetic dialogues with known speaker turns, and the diarization error rate to score turns against them.

* :func:`espeak_dialogue` speaks each ``(voice, text)`` turn with the ``espeak-ng`` program (Debian package
  ``espeak-ng``; ``.ci/run`` installs it) and joins the turns with pauses: 16 kHz float32 samples and the true
  turns. espeak-ng gives the same samples for the same text and voice, so the audio is deterministic.
* :func:`der`: frame-based diarization error rate (missed speech + false alarm + speaker confusion, over the
  true speech), with the best one-to-one mapping of the found speakers to the true ones and an optional collar.
  It agreed with ``pyannote.metrics`` to 1e-3 on four test sets (2-3 speakers, 40-70 s).

Imported by tests and benchmarks (``from dialogues import ...`` inside ``tests/``, ``tests.dialogues`` from the
repository root); it needs only numpy, the package and espeak-ng.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qwen_whisper_compat.audio import load_audio
from qwen_whisper_compat.diarization import SpeakerTurn

#: Two voices CAM++ tells apart easily (centroid cosine about 0.6).
MALE, FEMALE = "en-us+m3", "en-us+f3"
#: Lines for dialogues: one or two sentences each, 3-5 s at 160 words a minute.
LINES = (
    "Good morning, did you manage to read the quarterly report I sent yesterday?",
    "Yes, I read most of it last night, and the numbers look better than expected.",
    "That is great news. Do you think we should present it to the board next week?",
    "I think so, but we need to double check the sales figures for the northern region first.",
    "Fair point. I will ask the analytics team to verify them by Thursday.",
    "Perfect. Also, the marketing budget section seemed a little thin to me.",
    "Agreed, I can expand that part with the campaign results from the spring.",
    "Sounds good. Let us meet again on Friday morning to finalize everything.",
    "Friday works for me. Should we invite the finance director as well?",
    "Yes, please send her an invitation and attach the draft of the report.",
)
#: Samples quieter than this (after peak normalisation) at either end of a spoken turn are trimmed.
_TRIM_LEVEL = 0.01


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` program is on ``PATH``."""
    return shutil.which("espeak-ng") is not None


def require_espeak() -> None:
    """Skip the calling test (or module) when ``espeak-ng`` is missing."""
    import pytest

    if not espeak_available():
        pytest.skip("the espeak-ng program is not installed (Debian/Ubuntu: apt-get install espeak-ng)")


def espeak(voice: str, text: str, rate: int = 16000, wpm: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice`` at ``wpm`` words a minute: float32 samples at ``rate`` Hz with the
    silence espeak-ng puts around speech trimmed."""
    proc = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(wpm), text], capture_output=True, check=True, timeout=60
    )
    samples = load_audio(proc.stdout, sr=rate)
    loud = np.flatnonzero(np.abs(samples) > _TRIM_LEVEL * max(float(np.abs(samples).max()), 1e-9))
    if loud.size == 0:
        raise ValueError(f"espeak-ng produced no audible speech for {text!r} in voice {voice!r}")
    return samples[loud[0] : loud[-1] + 1]


def espeak_dialogue(
    turns: Sequence[tuple[str, str]], pause: float = 0.4, rate: int = 16000
) -> tuple[np.ndarray, list[SpeakerTurn]]:
    """A dialogue of ``(voice, text)`` turns spoken by espeak-ng, ``pause`` seconds apart (and before the first
    and after the last), at ``rate`` Hz.

    Returns:
        The samples (float32, peak 0.8) and the true turns, one per ``(voice, text)``, labelled ``SPEAKER_00``,
        ``SPEAKER_01``, ... by the voices' first appearance, in seconds.

    Raises:
        FileNotFoundError: espeak-ng is not installed (use :func:`require_espeak` in tests).
    """
    gap = np.zeros(round(pause * rate), dtype=np.float32)
    pieces: list[np.ndarray] = [gap]
    truth: list[SpeakerTurn] = []
    names: dict[str, str] = {}
    at = gap.size
    for voice, text in turns:
        speech = espeak(voice, text, rate)
        speaker = names.setdefault(voice, f"SPEAKER_{len(names):02d}")
        truth.append({"start": at / rate, "end": (at + speech.size) / rate, "speaker": speaker})
        pieces += [speech, gap]
        at += speech.size + gap.size
    audio = np.concatenate(pieces)
    audio *= 0.8 / max(float(np.abs(audio).max()), 1e-9)
    return audio.astype(np.float32), truth


def der(
    reference: Sequence[Mapping[str, Any]],
    hypothesis: Sequence[Mapping[str, Any]],
    *,
    collar: float = 0.0,
    step: float = 0.01,
) -> float:
    """Diarization error rate of ``hypothesis`` turns against ``reference`` turns (``start``, ``end``, ``speaker``).

    Time is cut into ``step``-second frames. In each frame, ``n_ref`` true and ``n_hyp`` found speakers talk;
    the errors are missed speech ``max(n_ref - n_hyp, 0)``, false alarm ``max(n_hyp - n_ref, 0)`` and confusion
    ``min(n_ref, n_hyp) - correct``, where ``correct`` counts the true speakers whose mapped found speaker talks
    too, under the one-to-one mapping of speakers that maximises it over the whole recording. The sum of the
    errors over all frames is divided by the sum of ``n_ref``.

    Args:
        collar: Frames within this many seconds of a true turn's start or end are not scored (pyannote.metrics'
            ``collar`` is the total width: ``DiarizationErrorRate(collar=2 * collar)``).
        step: Frame length in seconds.

    Raises:
        ValueError: ``reference`` holds no speech outside the collars.
    """
    end = max([t["end"] for t in [*reference, *hypothesis]], default=0.0)
    times = (np.arange(int(np.ceil(end / step)) + 1) + 0.5) * step
    ref, hyp = _activity(reference, times), _activity(hypothesis, times)
    scored = np.ones(times.size, dtype=bool)
    for turn in reference if collar > 0 else ():
        for boundary in (turn["start"], turn["end"]):
            scored &= np.abs(times - boundary) >= collar
    ref, hyp = ref[:, scored], hyp[:, scored]
    total = ref.sum()
    if total == 0:
        raise ValueError("the reference has no speech to score")
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    errors = np.maximum(n_ref - n_hyp, 0).sum() + np.maximum(n_hyp - n_ref, 0).sum() + np.minimum(n_ref, n_hyp).sum()
    return float((errors - _best_mapping(ref, hyp)) / total)


def _activity(turns: Sequence[Mapping[str, Any]], times: np.ndarray) -> np.ndarray:
    """``(speakers, frames)`` 0/1: who talks in each frame (speakers in sorted order)."""
    speakers = sorted({t["speaker"] for t in turns})
    active = np.zeros((len(speakers), times.size), dtype=np.int64)
    for t in turns:
        active[speakers.index(t["speaker"]), (times >= t["start"]) & (times < t["end"])] = 1
    return active


def _best_mapping(ref: np.ndarray, hyp: np.ndarray) -> int:
    """Frames where mapped speakers agree, under the best one-to-one mapping (every mapping is tried: fine for
    the handful of speakers of a test)."""
    overlap = ref @ hyp.T
    n_ref, n_hyp = overlap.shape
    if n_ref == 0 or n_hyp == 0:
        return 0
    if n_ref > n_hyp:
        overlap, (n_ref, n_hyp) = overlap.T, (n_hyp, n_ref)
    if math.perm(n_hyp, n_ref) > 1_000_000:
        raise ValueError(f"too many speakers ({n_ref} and {n_hyp}) to try every mapping")
    rows = np.arange(n_ref)
    return int(max(overlap[rows, list(cols)].sum() for cols in itertools.permutations(range(n_hyp), n_ref)))
