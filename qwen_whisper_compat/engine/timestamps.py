"""Repairing the aligner's raw timestamps, identical to the official ``fix_timestamp``.

The longest non-decreasing subsequence of the 2n slot values is taken as correct (ties resolved as the
official O(n^2) dynamic programme resolves them: the earliest predecessor, the first maximum). Runs of
values outside it are anomalies: a run of at most two takes the nearer correct neighbour (the left one on
a tie), a longer run is interpolated linearly between its neighbours; results are truncated to integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def longest_non_decreasing(values: Sequence[float]) -> list[int]:
    """Indices of the longest non-decreasing subsequence, with the official tie-breaking."""
    data = np.asarray(values, dtype=np.float64)
    n = len(data)
    if n == 0:
        return []
    dp = np.ones(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        ok = data[:i] <= data[i]
        if ok.any():
            cand = np.where(ok, dp[:i], 0)
            best = int(cand.max())
            parent[i] = int(np.argmax(cand == best))  # earliest j reaching the best length
            dp[i] = best + 1
    idx = int(np.argmax(dp))
    path = []
    while idx != -1:
        path.append(idx)
        idx = int(parent[idx])
    return path[::-1]


def fix_timestamps(values: Sequence[float]) -> list[int]:
    """Repair a sequence of slot times (milliseconds) into a non-decreasing one."""
    result = [float(v) for v in values]
    n = len(result)
    normal = [False] * n
    for i in longest_non_decreasing(result):
        normal[i] = True
    i = 0
    while i < n:
        if normal[i]:
            i += 1
            continue
        j = i
        while j < n and not normal[j]:
            j += 1
        left = next((result[k] for k in range(i - 1, -1, -1) if normal[k]), None)
        right = next((result[k] for k in range(j, n) if normal[k]), None)
        count = j - i
        for k in range(i, j):
            if left is None or right is None:
                result[k] = right if left is None else left  # type: ignore[assignment]
            elif count <= 2:
                result[k] = left if (k - (i - 1)) <= (j - k) else right
            else:
                result[k] = left + (right - left) / (count + 1) * (k - i + 1)
        i = j
    return [int(v) for v in result]
