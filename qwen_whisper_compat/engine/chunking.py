"""Cutting long audio into chunks at quiet points, as the official splitter does.

Each cut is placed at the quietest sample of the quietest 100 ms window within ``search_seconds`` of the
target length, so chunks end between words. Chunks are contiguous and cover every sample exactly once;
nothing is padded. No cut is placed within ``min_tail_seconds`` of the end, so there is never a tiny last
chunk (the official splitter zero-pads such tails to 0.5 s, which makes the model encode silence).
"""

from __future__ import annotations

import itertools

import numpy as np


def quiet_point(audio: np.ndarray, left: int, right: int, window: int) -> int:
    """Index of the quietest sample inside the quietest ``window``-sample stretch of ``audio[left:right]``."""
    seg = np.abs(audio[left:right].astype(np.float64))
    if seg.size <= window:
        return left + int(np.argmin(seg))
    csum = np.concatenate([[0.0], np.cumsum(seg)])
    sums = csum[window:] - csum[:-window]
    start = int(np.argmin(sums))
    return left + start + int(np.argmin(seg[start : start + window]))


def split_at_quiet_points(
    audio: np.ndarray,
    sample_rate: int = 16000,
    chunk_seconds: float = 30.0,
    search_seconds: float = 5.0,
    min_tail_seconds: float = 1.0,
    window_ms: float = 100.0,
) -> list[tuple[int, int]]:
    """(start, end) sample ranges of the chunks.

    A chunk is at most ``chunk_seconds + search_seconds`` long and at least ``min_tail_seconds`` (unless
    the whole input is shorter).
    """
    if chunk_seconds <= 0 or search_seconds < 0:
        raise ValueError("chunk_seconds must be > 0 and search_seconds >= 0")
    n = len(audio)
    target = int(chunk_seconds * sample_rate)
    expand = int(search_seconds * sample_rate)
    min_tail = int(min_tail_seconds * sample_rate)
    window = max(4, int(window_ms / 1000 * sample_rate))
    bounds = [0]
    start = 0
    while n - start > target:
        cut = start + target
        left = max(start + 1, cut - expand)
        right = min(n - min_tail, cut + expand)
        if right <= left:  # what is left is barely longer than one chunk: keep it whole
            break
        start = quiet_point(audio, left, right, window)
        bounds.append(start)
    bounds.append(n)
    return list(itertools.pairwise(bounds))
