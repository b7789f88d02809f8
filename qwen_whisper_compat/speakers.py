"""Speaker labels on segments and words, from diarized speaker turns (:mod:`~.diarize`).

The rule, as WhisperX's: a span gets the speaker whose turns overlap it most; when none overlaps it, the
speaker of the nearest turn. :func:`speaker_runs` cuts a sequence of timed units (a segment's words) where
the speaker changes, so that no segment, and no subtitle, mixes two speakers; a run shorter than
``MIN_RUN_SECONDS`` joins its neighbour (a word on a turn's edge does not become a segment of its own).
This module imports nothing heavy: it only reads turns.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from qwen_whisper_compat.errors import UnsupportedOptionError

__all__ = ["MIN_RUN_SECONDS", "SpeakerCounts", "SpeakerMap", "speaker_runs"]

#: A run of units shorter than this (seconds, first start to last end) takes its neighbour's speaker.
MIN_RUN_SECONDS = 0.3

U = TypeVar("U")


@dataclass(frozen=True)
class SpeakerCounts:
    """A transcription's ``diarize``, ``min_speakers`` and ``max_speakers`` (every face takes these three)."""

    wanted: bool = False
    min_speakers: int | None = None
    max_speakers: int | None = None

    @classmethod
    def take(cls, options: MutableMapping[str, Any]) -> SpeakerCounts:
        """Pop the three keywords from ``options``.

        Raises:
            UnsupportedOptionError: A speaker count without ``diarize=True``.
        """
        counts = cls(bool(options.pop("diarize", False)), options.pop("min_speakers", None),
                     options.pop("max_speakers", None))  # fmt: skip
        if not counts.wanted and (counts.min_speakers is not None or counts.max_speakers is not None):
            raise UnsupportedOptionError("min_speakers and max_speakers need diarize=True")
        return counts

    def map(self, samples: np.ndarray) -> SpeakerMap:
        """The speakers of 16 kHz ``samples``, diarized (the ``[diarize]`` extra)."""
        from qwen_whisper_compat.diarization import diarize

        return SpeakerMap(diarize(samples, min_speakers=self.min_speakers, max_speakers=self.max_speakers))


class SpeakerMap:
    """The speaker of any time span, from turns (``{"start", "end", "speaker"}`` mappings, in seconds).

    Args:
        turns: The diarized turns; their order does not matter. No turns: every span has no speaker.
    """

    def __init__(self, turns: Sequence[Mapping[str, Any]]) -> None:
        ordered = sorted((float(t["start"]), float(t["end"]), str(t["speaker"])) for t in turns)
        self._starts = [t[0] for t in ordered]
        self._turns = ordered
        #: The latest end among the turns up to each index (turns may overlap): bounds the backward scan.
        self._reach: list[float] = []
        latest = float("-inf")
        for _, end, _ in ordered:
            latest = max(latest, end)
            self._reach.append(latest)

    def __bool__(self) -> bool:
        return bool(self._turns)

    def __call__(self, start: float, end: float) -> str | None:
        """The speaker of ``[start, end]``: most overlap, else the nearest turn; ``None`` without turns."""
        if not self._turns:
            return None
        end = max(end, start)
        overlap: dict[str, float] = {}
        i = bisect.bisect_right(self._starts, end)  # turns starting after ``end`` cannot overlap
        j = i - 1
        while j >= 0 and self._reach[j] > start:
            t_start, t_end, speaker = self._turns[j]
            shared = min(end, t_end) - max(start, t_start)
            if shared > 0 or (shared == 0 and start == end and t_start <= start <= t_end):
                overlap[speaker] = overlap.get(speaker, 0.0) + max(shared, 1e-9)
            j -= 1
        if overlap:
            return max(overlap, key=overlap.__getitem__)
        return self._nearest(start, end)

    def _nearest(self, start: float, end: float) -> str:
        middle = (start + end) / 2
        i = bisect.bisect_right(self._starts, middle)
        candidates = self._turns[max(0, i - 2) : i + 2]
        if i >= 2:  # a long turn that started earlier may be nearer than the ones just before ``middle``
            k = bisect.bisect_right(self._reach, middle)
            candidates = [*candidates, *self._turns[max(0, k - 1) : k + 1]]

        def distance(turn: tuple[float, float, str]) -> float:
            return max(turn[0] - middle, middle - turn[1], 0.0)

        return min(candidates, key=distance)[2]


def speaker_runs(
    units: Sequence[U], span: Callable[[U], tuple[float, float]], speaker_at: Callable[[float, float], str | None]
) -> list[tuple[str | None, list[U]]]:
    """``units`` (in time order) cut into runs of one speaker each, short runs joined to a neighbour."""
    runs: list[tuple[str | None, list[U]]] = []
    for unit in units:
        speaker = speaker_at(*span(unit))
        if runs and runs[-1][0] == speaker:
            runs[-1][1].append(unit)
        else:
            runs.append((speaker, [unit]))
    changed = True
    while changed and len(runs) > 1:
        changed = False
        for k, (_, members) in enumerate(runs):
            if span(members[-1])[1] - span(members[0])[0] >= MIN_RUN_SECONDS:
                continue
            into = k - 1 if k > 0 else k + 1
            speaker, target = runs[into]
            merged = [*target, *members] if into < k else [*members, *target]
            runs[into] = (speaker, merged)
            del runs[k]
            changed = True
            break
    out: list[tuple[str | None, list[U]]] = []  # neighbours of one speaker after the joins become one run
    for speaker, members in runs:
        if out and out[-1][0] == speaker:
            out[-1][1].extend(members)
        else:
            out.append((speaker, list(members)))
    return out
