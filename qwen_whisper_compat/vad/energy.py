"""The energy voice activity detector (numpy only, any sample rate): speech-band level above a local noise
floor, scored per 10 ms frame, and the post-processing that turns scores into speech regions (see the
package docstring for how it differs from faster-whisper's)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from qwen_whisper_compat.engine.speech import SpeechGate
from qwen_whisper_compat.vad.common import VadOptions, as_mono, pad_regions

#: Hop between two frame scores.
FRAME_SECONDS = 0.01
_BAND_HZ = (200.0, 4000.0)  # the band whose power is measured: most speech energy, little hum or hiss
_FLOOR_REACH_FRAMES = 50  # the noise floor looks 0.5 s back and 0.5 s ahead
_MIN_FLOOR_DB = -70.0  # digital silence is not a floor: speech must reach -70 dBFS + margin
_SCORE_RANGE_DB = 16.0  # score 1.0 is this far above the floor
_FFT_BATCH = 16384
_SILENCE_DB = -120.0


def frame_hop(sampling_rate: int) -> int:
    """Samples per energy-detector frame (10 ms): the scores and the timestamps must agree on it."""
    return max(1, round(sampling_rate * FRAME_SECONDS))


def frame_scores(audio: np.ndarray, sampling_rate: int = 16000) -> np.ndarray:
    """Per-frame speech score in [0, 1], one per started 10 ms of ``audio`` (float32).

    The score is the frame's speech-band level in dB above the local noise floor, divided by 16 dB and
    clipped; see the module docstring.
    """
    samples = as_mono(audio)
    hop = frame_hop(sampling_rate)
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    level = _frame_levels_db(samples, hop, sampling_rate)
    floor = np.maximum(_noise_floor_db(level), _MIN_FLOOR_DB)
    scores: np.ndarray = np.clip((level - floor) / _SCORE_RANGE_DB, 0.0, 1.0).astype(np.float32)
    return scores


def timestamps_from_scores(
    scores: np.ndarray,
    options: VadOptions,
    frame_samples: int,
    num_samples: int,
    sampling_rate: int = 16000,
) -> list[dict[str, int]]:
    """Speech regions (samples) from per-frame scores or probabilities, post-processed as in the module docstring.

    Args:
        scores: One value in [0, 1] per frame; frame ``i`` covers samples ``[i * frame_samples,
            (i + 1) * frame_samples)``.
        options: Thresholds and durations.
        frame_samples: Samples per frame.
        num_samples: Length of the audio; regions are clipped to it.
        sampling_rate: Sample rate, to convert the options' durations.
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    min_silence = math.ceil(round(options.min_silence_duration_ms * sampling_rate / 1000 / frame_samples, 6))
    pad = int(sampling_rate * options.speech_pad_ms / 1000)
    max_samples = sampling_rate * options.max_speech_duration_s - 2 * pad
    max_frames = max(1, int(max_samples / frame_samples)) if math.isfinite(max_samples) else None
    regions: list[tuple[int, int]] = []
    for starts, ends in _speech_runs(scores, options, min_silence):
        regions.extend(_split_long(np.asarray(starts), np.asarray(ends), scores, max_frames))
    min_speech = options.min_speech_duration_ms / 1000 * sampling_rate
    sample_regions = [
        (s * frame_samples, min(e * frame_samples, num_samples))
        for s, e in regions
        if min(e * frame_samples, num_samples) - s * frame_samples > min_speech
    ]
    return pad_regions(sample_regions, pad, num_samples)


def _frame_levels_db(samples: np.ndarray, hop: int, sampling_rate: int) -> np.ndarray:
    """Speech-band power (200-4000 Hz) of a 20 ms Hann window centred on each frame, in dB (float64)."""
    n_frames = -(-samples.size // hop)
    window = 2 * hop
    padded = np.pad(samples.astype(np.float32, copy=False), (hop // 2, n_frames * hop - samples.size + window))
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop][:n_frames]
    taper = np.hanning(window).astype(np.float32)
    freqs = np.fft.rfftfreq(window, 1.0 / sampling_rate)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
    scale = 2.0 / float(taper @ taper) / window  # a full-scale sine in the band reads about 0 dB
    power = np.empty(n_frames, dtype=np.float64)
    for lo in range(0, n_frames, _FFT_BATCH):  # batches bound the memory for long recordings
        spectrum = np.fft.rfft(frames[lo : lo + _FFT_BATCH] * taper, axis=1)[:, band]
        power[lo : lo + spectrum.shape[0]] = (spectrum.real**2 + spectrum.imag**2).sum(axis=1) * scale
    with np.errstate(divide="ignore"):
        level: np.ndarray = np.maximum(10.0 * np.log10(power), _SILENCE_DB)
    return level


def _noise_floor_db(level: np.ndarray) -> np.ndarray:
    """The higher of the minimum level in the 0.5 s before each frame and in the 0.5 s after it."""
    reach = _FLOOR_REACH_FRAMES
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(level, reach, mode="edge"), reach + 1)
    lowest = windows.min(axis=1)  # lowest[i] covers padded frames i..i+reach, i.e. frames i-reach..i
    floor: np.ndarray = np.maximum(lowest[: level.size], lowest[reach:])
    return floor


def _speech_runs(scores: np.ndarray, options: VadOptions, min_silence: int) -> Iterator[tuple[list[int], list[int]]]:
    """Each speech region (the package's one speech/silence rule, :class:`SpeechGate`, over frames) as its
    runs of speech: their start frames and end frames (exclusive), the pauses shorter than ``min_silence``
    frames between them. Speech starts where the rise that reaches ``threshold`` began."""
    gate = SpeechGate(options.threshold, options.effective_neg_threshold, 1, min_silence, onset_at_rise=True)
    starts: list[int] = []
    ends: list[int] = []
    for frame, score in enumerate(scores.tolist()):
        onset = gate.onset(score, frame)
        if onset is not None:
            if onset.pause_from is not None:
                ends.append(onset.pause_from)
            starts.append(onset.position)
            continue
        end = gate.offset(score, frame)
        if end is not None:
            yield starts, [*ends, end]
            starts, ends = [], []
    if gate.in_speech:  # open at the end: it ends where its speech ends
        yield starts, [*ends, gate.silence_from if gate.silence_from is not None else scores.size]


def _split_long(
    starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, max_frames: int | None
) -> list[tuple[int, int]]:
    """One merged region (its runs ``starts``/``ends``) as pieces of at most ``max_frames`` frames.

    A piece that is too long is split at its longest gap between runs; a single run that is too long is cut
    at its lowest-scoring frame in the second half of the allowed length.
    """
    start, end = int(starts[0]), int(ends[-1])
    if max_frames is None or end - start <= max_frames:
        return [(start, end)]
    if starts.size > 1:
        k = int(np.argmax(starts[1:] - ends[:-1])) + 1
        return _split_long(starts[:k], ends[:k], scores, max_frames) + _split_long(
            starts[k:], ends[k:], scores, max_frames
        )
    pieces = []
    while end - start > max_frames:
        lo = start + max(1, max_frames // 2)
        cut = lo + int(np.argmin(scores[lo : start + max_frames + 1]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces
