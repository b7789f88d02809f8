"""The open segment's audio and what of it never has to be computed again: log-mel frames whose samples
have all arrived, and the encoder output of completed 8 s attention windows.

The encoder attends only inside 8 s windows (800 mel frames, 104 output rows) and convolves 1 s chunks on
their own, so a completed window's output does not change when later audio arrives, with one exception:
whisper's normalisation clamps the log-mel to 8 below the maximum of the whole span, so a louder sound
later can change a window that holds very quiet frames. Each window keeps the peak it was encoded with and
its own minimum, and is encoded again only when the clamp would change it. What :meth:`SegmentFeatures.embeddings`
returns therefore equals a fresh encode of the span (to float rounding), as the offline pipeline computes it.

Every completed window's rows carry a version number, drawn from one counter for the whole process and
never reused: a window encoded again gets a new one. A KV cache that holds a window's rows names them by it
(:class:`~qwen_whisper_compat.engine.decoder.Part`), so it can never mistake other rows for them.

Cost: each frame is computed once, when its samples have arrived (a few frames at the end, which reflect at
the end of the audio, are computed again per call); the running peak of the settled frames is kept, so a
call costs what is new. Buffers are sized for one segment and shrink back after a cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qwen_whisper_compat.engine.encoder import CHUNK_FRAMES, WINDOW_FRAMES
from qwen_whisper_compat.engine.mel import HOP_LENGTH, N_FFT, n_frames, normalize_log_mel, raw_log_mel

#: Encode normalised log-mel ``[n_mels, T]`` into ``[N, dim]`` embeddings (the model's encoder).
Encode = Callable[[np.ndarray], np.ndarray]

#: Versions of encoded windows, unique in the process (``next`` on a count is atomic in CPython).
_versions = itertools.count(1)


@dataclass
class _Window:
    embeds: np.ndarray
    peak: float
    low: float
    version: int


def settled_frames(n_samples: int) -> int:
    """Frames of ``n_samples`` whose 400 samples all lie inside them (no reflection at the end)."""
    return max(0, min(n_frames(n_samples), (n_samples - N_FFT // 2) // HOP_LENGTH + 1))


class SegmentFeatures:
    """Audio of one open segment, its settled log-mel frames and its completed windows' encoder output.

    Args:
        encode: The model's encoder.
        n_mels: Mel bins of the model.
        window_rows: Encoder rows of one full 8 s window (104 for the released models).
        capacity: Samples the segment may reach (the buffer grows past it if it must, and shrinks back to it
            when the segment is cut).
    """

    def __init__(self, encode: Encode, n_mels: int, window_rows: int, capacity: int) -> None:
        self._encode, self.n_mels, self.window_rows = encode, n_mels, window_rows
        self._capacity = max(capacity, HOP_LENGTH)
        self._audio = np.zeros(self._capacity, dtype=np.float32)
        self.n = 0
        self._raw = np.zeros((n_mels, n_frames(self._audio.size)), dtype=np.float32)
        self._settled = 0
        self._peak = -np.inf  # of the settled frames
        self._windows: list[_Window] = []
        self._pieces: list[tuple[np.ndarray, int]] = []  # completed streaming-mode windows (partials), versioned
        #: Encoder calls that re-encoded a completed window (the clamp changed), for tests and statistics.
        self.reencoded = 0
        #: Log-mel frames computed (the ones computed again at the reflecting end included), for tests.
        self.frames_computed = 0

    @property
    def audio(self) -> np.ndarray:
        """The segment's samples so far (a view)."""
        return self._audio[: self.n]

    @property
    def buffer_samples(self) -> int:
        """Samples the audio buffer can hold now (its memory), for tests."""
        return int(self._audio.size)

    def append(self, samples: np.ndarray) -> None:
        """Add samples at the end of the segment."""
        if self.n + samples.size > self._audio.size:
            self._resize(2 * (self.n + samples.size))
        self._audio[self.n : self.n + samples.size] = samples
        self.n += samples.size

    def _resize(self, size: int) -> None:
        audio = np.zeros(size, dtype=np.float32)
        audio[: self.n] = self._audio[: self.n]
        self._audio = audio
        raw = np.zeros((self.n_mels, n_frames(size)), dtype=np.float32)
        raw[:, : self._settled] = self._raw[:, : self._settled]
        self._raw = raw

    def embeddings(self, n_samples: int | None = None) -> tuple[np.ndarray, int]:
        """Encoder output of the segment's first ``n_samples`` (default: all of it), and how many of its rows
        come from completed windows (the rows that stay the same when more audio arrives)."""
        n = self.n if n_samples is None else n_samples
        if n < HOP_LENGTH:
            raise ValueError(f"a segment needs at least {HOP_LENGTH} samples to encode, it has {n}")
        settled, peak = self._spectrum(n)
        total = n_frames(n)
        complete = settled // WINDOW_FRAMES
        rows = [self._window(k, peak) for k in range(complete)]
        first = complete * WINDOW_FRAMES
        if total > first:
            back = WINDOW_FRAMES if complete and total - first < CHUNK_FRAMES else 0
            # a last convolution chunk shorter than 1 s is zero-padded when it is not alone in the call, as
            # in the offline encode of the whole span: encode it together with the window before it
            out = self._encode(normalize_log_mel(self._frames(n, first - back), peak))
            rows.append(out[self.window_rows if back else 0 :])
        embeds = np.concatenate(rows) if len(rows) > 1 else rows[0]
        return embeds, complete * self.window_rows

    def partial_embeddings(self, piece_frames: int) -> tuple[np.ndarray, tuple[int, ...]]:
        """Encoder output of the whole segment in attention windows of ``piece_frames`` (the encoder's
        streaming mode: AuT is trained with windows of 1 to 8 s), for partials: each completed window is
        encoded once, with the clamp of the moment, and never again; only the open one is encoded each time.

        Returns the rows and the version of each completed window (whose rows come first).
        """
        settled, peak = self._spectrum(self.n)
        for k in range(len(self._pieces), settled // piece_frames):
            raw = self._raw[:, k * piece_frames : (k + 1) * piece_frames]
            self._pieces.append((self._encode(normalize_log_mel(raw, peak)), next(_versions)))
        first = len(self._pieces) * piece_frames
        rows = [embeds for embeds, _ in self._pieces]
        if n_frames(self.n) > first:
            rows.append(self._encode(normalize_log_mel(self._frames(self.n, first), peak)))
        return np.concatenate(rows), tuple(version for _, version in self._pieces)

    def complete_windows(self) -> bool:
        """Encode the 8 s windows completed so far (exactly, as :meth:`embeddings` uses them), so that a
        final later finds them done; cheap when none completed since the last call. Returns whether any
        window was encoded."""
        settled = self._settle()
        if settled // WINDOW_FRAMES <= len(self._windows):
            return False
        for k in range(settled // WINDOW_FRAMES):
            self._window(k, self._peak)
        return True

    def reset(self, keep_from: int) -> None:
        """Start the next segment at sample ``keep_from`` of this one: the samples after it are kept, every
        frame and window is dropped (their frames are counted from the new start), and a buffer that grew
        past the segment's capacity shrinks back."""
        rest = self._audio[keep_from : self.n].copy()
        self.n = 0
        self._settled = 0
        self._peak = -np.inf
        self._windows = []
        self._pieces = []
        if self._audio.size > 2 * max(self._capacity, rest.size):
            self._resize(max(self._capacity, rest.size))
        self.append(rest)

    def _spectrum(self, n: int) -> tuple[int, float]:
        """For the first ``n`` samples: how many frames are settled, and the peak of all their frames (the
        clamp's reference; the last few frames reflect at ``n``)."""
        self._settle()
        settled, total = settled_frames(n), n_frames(n)
        if settled == self._settled:
            peak = self._peak
        else:  # a span that ends before the audio fed so far (a final cut inside it)
            peak = float(self._raw[:, :settled].max()) if settled else -np.inf
        if total > settled:
            peak = max(peak, float(self._tail(n, settled).max()))
        return settled, float(peak)

    def _frames(self, n: int, first: int) -> np.ndarray:
        """Raw log-mel frames ``first..`` of the first ``n`` samples (the settled ones, then the tail)."""
        settled = settled_frames(n)
        mel = self._raw[:, first:settled]
        if n_frames(n) > settled:
            mel = np.concatenate([mel, self._tail(n, max(first, settled))], axis=1)
        return mel

    def _tail(self, n: int, first: int) -> np.ndarray:
        """Frames ``first..`` of the first ``n`` samples, computed now (they reflect at ``n``)."""
        out = raw_log_mel(self._audio[:n], first, n_frames(n), self.n_mels)
        self.frames_computed += out.shape[1]
        return out

    def _settle(self) -> int:
        """Compute the frames settled by the samples fed so far (each once); return how many there are."""
        target = settled_frames(self.n)
        if target > self._settled:
            new = raw_log_mel(self._audio[: self.n], self._settled, target, self.n_mels)
            self._raw[:, self._settled : target] = new
            self.frames_computed += new.shape[1]
            self._peak = max(self._peak, float(new.max()))
            self._settled = target
        return target

    def _window(self, k: int, peak: float) -> np.ndarray:
        """Encoder rows of completed window ``k`` under the clamp of ``peak``; encoded again if it changed."""
        if k < len(self._windows):
            w = self._windows[k]
            if w.peak == peak or w.low >= max(w.peak, peak) - 8.0:
                return w.embeds
            self.reencoded += 1
        raw = self._raw[:, k * WINDOW_FRAMES : (k + 1) * WINDOW_FRAMES]
        window = _Window(self._encode(normalize_log_mel(raw, peak)), peak, float(raw.min()), next(_versions))
        if k < len(self._windows):
            self._windows[k] = window
        else:
            self._windows.append(window)
        return window.embeds

    def window_embeddings(self) -> list[np.ndarray]:
        """Encoder rows of the completed windows encoded so far (as last encoded; see :meth:`window_versions`)."""
        return [w.embeds for w in self._windows]

    def window_versions(self) -> list[int]:
        """The version of each completed window's current rows (a new one whenever a window is encoded again)."""
        return [w.version for w in self._windows]
