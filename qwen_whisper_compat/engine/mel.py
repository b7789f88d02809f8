"""Whisper's log-mel spectrogram in numpy, as Qwen3-ASR's ``WhisperFeatureExtractor`` computes it.

16 kHz, n_fft 400 (periodic Hann), hop 160, centred STFT with reflect padding, power spectrum, the last
frame dropped (T = samples // 160), Slaney-scale / Slaney-normalised mel filters over 0-8 kHz,
``log10(max(mel, 1e-10))``, clamped to 8 below the maximum of the span passed in, then ``(x + 4) / 4``.
No padding to 30 s: the official processor pads only to the longest clip of a batch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp(np.log(6.4) * (m - 15.0) / 27.0)
    return np.where(m >= 15.0, log, lin)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 128, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Slaney mel filter bank ``[n_mels, n_fft // 2 + 1]`` (float32, read-only)."""
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    diff = np.diff(hz_pts)
    slopes = hz_pts[None, :] - fft_freqs[:, None]
    down = -slopes[:, :-2] / diff[:-1]
    up = slopes[:, 2:] / diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))  # [n_freq, n_mels]
    fb *= 2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels])
    out = np.ascontiguousarray(fb.T, dtype=np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=2)
def _hann(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


def n_frames(n_samples: int) -> int:
    """Mel frames for ``n_samples`` samples at 16 kHz."""
    return n_samples // HOP_LENGTH


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 128) -> np.ndarray:
    """Normalised log-mel features ``[n_mels, len(audio) // 160]`` of 16 kHz mono float audio."""
    raw = raw_log_mel(audio, n_mels=n_mels)
    return normalize_log_mel(raw, float(raw.max()))


def raw_log_mel(audio: np.ndarray, first: int = 0, last: int | None = None, n_mels: int = 128) -> np.ndarray:
    """``log10`` mel power of frames ``first..last-1`` of the whole of ``audio`` (before the clamp and the
    scaling of :func:`normalize_log_mel`).

    A frame depends only on the 400 samples around it (reflect-padded at the ends of ``audio``), so frames
    computed piece by piece equal those of one call over everything (to float rounding); a live stream
    computes each frame once, when the samples after it have arrived.
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio must be 1-D mono samples, got shape {x.shape}")
    if x.size < HOP_LENGTH:
        raise ValueError(f"audio must hold at least {HOP_LENGTH} samples (10 ms), got {x.size}")
    total = n_frames(x.size)
    last = total if last is None else last
    if not 0 <= first <= last <= total:
        raise ValueError(f"frames {first}..{last} are not within the {total} frames of the audio")
    if first == last:
        return np.zeros((n_mels, 0), dtype=np.float32)
    pad = N_FFT // 2
    lo, hi = first * HOP_LENGTH - pad, (last - 1) * HOP_LENGTH + N_FFT - pad  # the samples the frames read
    # only the samples these frames read, reflected where they reach past an end (as np.pad(x, pad, "reflect")
    # would give them), so that computing a few frames of a long buffer costs a few frames
    left, right = max(0, -lo), max(0, hi - x.size)
    if max(left, right) >= x.size:  # shorter than the window: reflected more than once, as numpy does
        window = np.pad(x, pad, mode="reflect")[lo + pad : hi + pad]
    else:
        window = x[max(lo, 0) : min(hi, x.size)]
        if left or right:
            window = np.concatenate([x[1 : left + 1][::-1], window, x[x.size - 1 - right : x.size - 1][::-1]])
    frames = np.lib.stride_tricks.sliding_window_view(window, N_FFT)[::HOP_LENGTH]
    spec = np.fft.rfft(frames * _hann(N_FFT), axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    mel = mel_filters(n_mels) @ power.T
    out: np.ndarray = np.log10(np.maximum(mel, 1e-10))
    return out


def normalize_log_mel(raw: np.ndarray, peak: float) -> np.ndarray:
    """Whisper's normalisation of :func:`raw_log_mel` values: clamped to 8 below ``peak`` (the maximum of the
    span being transcribed), then ``(x + 4) / 4``."""
    out: np.ndarray = ((np.maximum(raw, peak - 8.0) + 4.0) / 4.0).astype(np.float32)
    return out
