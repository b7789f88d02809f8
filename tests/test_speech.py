"""The package's one speech/silence rule (``engine/speech.py``) and its three users: the live segmenter, the
Silero post-processing and the energy detector's; and the one default ``neg_threshold``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qwen_whisper_compat.engine.live.segmenter import Segmenter
from qwen_whisper_compat.engine.live.types import LiveOptions
from qwen_whisper_compat.engine.speech import Onset, SpeechGate, effective_neg_threshold
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.vad import VadOptions, frame_scores, timestamps_from_probabilities, timestamps_from_scores
from qwen_whisper_compat.vad.energy import _split_long

SR = 16000
WINDOW = 512


def run_gate(gate: SpeechGate, scores: list[float]) -> list[tuple[str, int, int | None]]:
    """("onset", position, pause_from) and ("end", position, None) in order, as a caller drives the gate."""
    out: list[tuple[str, int, int | None]] = []
    for i, score in enumerate(scores):
        onset = gate.onset(score, i)
        if onset is not None:
            out.append(("onset", onset.position, onset.pause_from))
            if onset.pause_from is None:
                continue
        if (end := gate.offset(score, i)) is not None:
            out.append(("end", end, None))
    return out


def test_a_window_between_the_thresholds_neither_ends_a_pause_nor_starts_one() -> None:
    # windows:   0    1    2    3    4    5    6    7    8    9   10   11
    scores = [0.1, 0.4, 0.9, 0.4, 0.1, 0.4, 0.4, 0.1, 0.9, 0.1, 0.4, 0.1]
    gate = SpeechGate(0.5, 0.35, window=1, min_silence=4)
    # speech at 2 (0.4 at 1 does not start it, 0.4 at 3 goes on); a pause from 4 that the 0.4s at 5-6 do not
    # end, so at 7 it has lasted 4 windows: the speech ends at 4. Then speech at 8, a pause from 9, open.
    assert run_gate(gate, scores) == [("onset", 2, None), ("end", 4, None), ("onset", 8, None)]
    assert gate.in_speech and gate.silence_from == 9 and gate.heard_silence(11) == 3
    # a window scoring `threshold` ends the pause: speech goes on, the pause is reported
    gate = SpeechGate(0.5, 0.35, window=1, min_silence=4)
    assert run_gate(gate, [0.9, 0.1, 0.4, 0.9, 0.1]) == [("onset", 0, None), ("onset", 3, 1)]
    assert gate.heard_silence(4) == 1


def test_onset_at_rise_starts_speech_where_its_rise_began() -> None:
    gate = SpeechGate(0.5, 0.35, window=1, min_silence=2, onset_at_rise=True)
    # the rise 0.4, 0.45 before 0.9 belongs to the speech; after a pause, the rise before speech resumes too
    assert run_gate(gate, [0.1, 0.4, 0.45, 0.9, 0.1, 0.4, 0.9]) == [("onset", 1, None), ("onset", 5, 4)]


def test_stop_and_restart_are_the_callers_splits() -> None:
    gate = SpeechGate(0.5, 0.35, window=10, min_silence=30)
    assert gate.onset(0.9, 0) == Onset(0, None)
    assert gate.onset(0.1, 10) is None and gate.offset(0.1, 10) is None
    gate.restart(15, silence_from=15)  # split inside the pause: the new speech's pause counts from the split
    assert gate.start == 15 and gate.heard_silence(20) == 15
    assert gate.offset(0.1, 40) == 15  # 40 + 10 - 15 >= 30
    assert not gate.in_speech
    gate.onset(0.9, 50)
    gate.stop()
    assert not gate.in_speech and gate.offset(0.1, 60) is None


# --- the three users, one rule --------------------------------------------------------------------------


def windows(*spans: tuple[float, int]) -> list[float]:
    return [score for score, count in spans for _ in range(count)]


def test_the_three_users_end_speech_at_the_same_pause() -> None:
    """A pause whose middle scores between the thresholds (0.4) is one pause to all three users: it lasts
    long enough to end the speech. (Speech that went on while windows scored ``neg_threshold`` once let the
    live segmenter hold it open.) A short pause ends nothing."""
    probs = windows((0.05, 20), (0.9, 40), (0.05, 3), (0.4, 20), (0.05, 3), (0.9, 30), (0.05, 4), (0.9, 30))
    num_samples = len(probs) * WINDOW
    pause = 60 * WINDOW  # where the long pause begins
    second = 86 * WINDOW  # where speech resumes
    vad = VadOptions(min_silence_duration_ms=500, speech_pad_ms=0)
    silero = timestamps_from_probabilities(np.array(probs, np.float32), vad, num_samples)
    energy = timestamps_from_scores(np.array(probs, np.float32), vad, WINDOW, num_samples)
    expected = [{"start": 20 * WINDOW, "end": pause}, {"start": second, "end": num_samples}]
    assert silero == energy == expected
    segmenter = Segmenter(LiveOptions(min_silence_seconds=0.5, pad_seconds=0.0), WINDOW, SR, lambda a, b: b)
    cuts = segmenter.push(probs)
    # (without padding the silences are segments of their own: the one before each speech ends as it starts)
    assert [(c.position, c.speech) for c in cuts] == [(20 * WINDOW, False), (pause, True), (second, False)]
    assert segmenter.has_speech and segmenter.quiet_since is None  # the open segment holds the later speech


def test_the_live_segmenter_is_quiet_through_a_pause_between_the_thresholds() -> None:
    segmenter = Segmenter(LiveOptions(), WINDOW, SR, lambda a, b: b)
    segmenter.push(windows((0.9, 10), (0.1, 2)))
    assert segmenter.quiet_since == 10 * WINDOW
    segmenter.push([0.4])  # neither speech nor silence: the pause goes on
    assert segmenter.quiet_since == 10 * WINDOW
    segmenter.push([0.6])
    assert segmenter.quiet_since is None


def reference_energy_regions(scores: np.ndarray, options: VadOptions, frame: int, n: int) -> list[dict[str, int]]:
    """The energy post-processing computed over the whole array at once, as it was before the gate: runs of
    frames scoring ``neg_threshold`` that hold a frame scoring ``threshold``, merged across gaps shorter than
    ``min_silence``, split when too long, filtered and padded. The streaming gate must give the same."""
    above = np.concatenate([[False], scores >= options.effective_neg_threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    starts, ends = edges[0::2], edges[1::2]
    strong = np.concatenate([[0], np.cumsum(scores >= options.threshold)])
    keep = strong[ends] > strong[starts]
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return []
    min_silence = math.ceil(round(options.min_silence_duration_ms * SR / 1000 / frame, 6))
    pad = int(SR * options.speech_pad_ms / 1000)
    max_samples = SR * options.max_speech_duration_s - 2 * pad
    max_frames = max(1, int(max_samples / frame)) if math.isfinite(max_samples) else None
    regions: list[tuple[int, int]] = []
    for group in np.split(np.arange(starts.size), np.flatnonzero(starts[1:] - ends[:-1] >= min_silence) + 1):
        regions.extend(_split_long(starts[group], ends[group], scores, max_frames))
    out = []
    for s, e in regions:
        if min(e * frame, n) - s * frame > options.min_speech_duration_ms / 1000 * SR:
            out.append({"start": s * frame, "end": min(e * frame, n)})
    from qwen_whisper_compat.vad.common import pad_regions

    return pad_regions([(r["start"], r["end"]) for r in out], pad, n)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"min_silence_duration_ms": 300, "speech_pad_ms": 0},
        {"min_silence_duration_ms": 0, "speech_pad_ms": 0},
        {"min_silence_duration_ms": 100, "max_speech_duration_s": 2, "speech_pad_ms": 50},
        {"threshold": 0.3, "neg_threshold": 0.1, "min_speech_duration_ms": 100, "min_silence_duration_ms": 200},
    ],
)
def test_energy_regions_are_those_of_the_whole_array_rule(jfk: np.ndarray, options: dict[str, float]) -> None:
    rng = np.random.default_rng(0)
    wander = np.clip(np.repeat(rng.choice([0.05, 0.3, 0.42, 0.6, 0.95], 300), 9) + rng.normal(0, 0.1, 2700), 0, 1)
    for scores, frame in [(frame_scores(jfk), 160), (wander.astype(np.float32), 160), (wander.astype(np.float32), 7)]:
        n = scores.size * frame - 3
        opts = VadOptions(**options)
        ours = timestamps_from_scores(scores, opts, frame, n)
        assert len(ours) >= 1
        assert ours == reference_energy_regions(scores, opts, frame, n)


# --- one default neg_threshold, errors that name what was set ----------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 0.005, 0.01, 0.1, 0.16, 0.5, 0.9, 1.0])
def test_one_default_neg_threshold(threshold: float) -> None:
    expected = effective_neg_threshold(threshold, None)
    assert 0.0 <= expected <= threshold
    assert VadOptions(threshold=threshold).effective_neg_threshold == expected
    assert LiveOptions(threshold=threshold).effective_neg_threshold == expected
    assert expected == pytest.approx(min(threshold, max(threshold - 0.15, 0.01)))


@pytest.mark.parametrize("make", [VadOptions, LiveOptions])
def test_threshold_errors_name_what_the_user_set(make: type) -> None:
    assert make(threshold=0.005).effective_neg_threshold == 0.005  # a low threshold alone is fine
    with pytest.raises(UnsupportedOptionError, match=r"^threshold must be within \[0, 1\], got 1.5$"):
        make(threshold=1.5)
    with pytest.raises(UnsupportedOptionError, match=r"^neg_threshold must be within \[0, threshold=0.3\], got 0.5$"):
        make(threshold=0.3, neg_threshold=0.5)
    with pytest.raises(ValueError, match="neg_threshold"):  # the error is a ValueError too
        make(neg_threshold=-0.1)
