"""The open segment's audio and what of it never has to be computed again: log-mel frames whose samples
have all arrived, and the encoder output of completed 8 s attention windows.

The encoder attends only inside 8 s windows (800 mel frames, 104 output rows) and convolves 1 s chunks on
their own, so a completed window's output does not change when later audio arrives, with one exception:
whisper's normalisation clamps the log-mel to 8 below the maximum of the whole span, so a louder sound
later can change a window that holds very quiet frames. Each window keeps the peak it was encoded with and
its own minimum, and is encoded again only when the clamp would change it. What :meth:`SegmentFeatures.embeddings`
returns therefore equals a fresh encode of the span (to float rounding), as the offline pipeline computes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qwen_whisper_compat.engine.encoder import CHUNK_FRAMES, WINDOW_FRAMES
from qwen_whisper_compat.engine.mel import HOP_LENGTH, N_FFT, n_frames, normalize_log_mel, raw_log_mel

#: Encode normalised log-mel ``[n_mels, T]`` into ``[N, dim]`` embeddings (the model's encoder).
Encode = Callable[[np.ndarray], np.ndarray]


@dataclass
class _Window:
    embeds: np.ndarray
    peak: float
    low: float


def settled_frames(n_samples: int) -> int:
    """Frames of ``n_samples`` whose 400 samples all lie inside them (no reflection at the end)."""
    return max(0, min(n_frames(n_samples), (n_samples - N_FFT // 2) // HOP_LENGTH + 1))


class SegmentFeatures:
    """Audio of one open segment, its settled log-mel frames and its completed windows' encoder output.

    Args:
        encode: The model's encoder.
        n_mels: Mel bins of the model.
        window_rows: Encoder rows of one full 8 s window (104 for the released models).
        capacity: Samples the segment may reach (the buffer grows past it if it must).
    """

    def __init__(self, encode: Encode, n_mels: int, window_rows: int, capacity: int) -> None:
        self._encode, self.n_mels, self.window_rows = encode, n_mels, window_rows
        self._audio = np.zeros(max(capacity, HOP_LENGTH), dtype=np.float32)
        self.n = 0
        self._raw = np.zeros((n_mels, n_frames(self._audio.size)), dtype=np.float32)
        self._settled = 0
        self._windows: list[_Window] = []
        self._pieces: list[np.ndarray] = []  # completed streaming-mode windows (partials)
        #: Encoder calls that re-encoded a completed window (the clamp changed), for tests and statistics.
        self.reencoded = 0

    @property
    def audio(self) -> np.ndarray:
        """The segment's samples so far (a view)."""
        return self._audio[: self.n]

    def append(self, samples: np.ndarray) -> None:
        """Add samples at the end of the segment."""
        if self.n + samples.size > self._audio.size:
            grown = np.zeros(2 * (self.n + samples.size), dtype=np.float32)
            grown[: self.n] = self._audio[: self.n]
            self._audio = grown
            raw = np.zeros((self.n_mels, n_frames(grown.size)), dtype=np.float32)
            raw[:, : self._settled] = self._raw[:, : self._settled]
            self._raw = raw
        self._audio[self.n : self.n + samples.size] = samples
        self.n += samples.size

    def embeddings(self, n_samples: int | None = None) -> tuple[np.ndarray, int]:
        """Encoder output of the segment's first ``n_samples`` (default: all of it), and how many of its rows
        come from completed windows (the rows that stay the same when more audio arrives)."""
        n = self.n if n_samples is None else n_samples
        if n < HOP_LENGTH:
            raise ValueError(f"a segment needs at least {HOP_LENGTH} samples to encode, it has {n}")
        settled, mel, peak = self._spectrum(n)
        total = mel.shape[1]
        complete = settled // WINDOW_FRAMES
        rows = [self._window(k, peak) for k in range(complete)]
        first = complete * WINDOW_FRAMES
        if total > first:
            back = WINDOW_FRAMES if complete and total - first < CHUNK_FRAMES else 0
            # a last convolution chunk shorter than 1 s is zero-padded when it is not alone in the call, as
            # in the offline encode of the whole span: encode it together with the window before it
            out = self._encode(normalize_log_mel(mel[:, first - back : total], peak))
            rows.append(out[self.window_rows if back else 0 :])
        embeds = np.concatenate(rows) if len(rows) > 1 else rows[0]
        return embeds, complete * self.window_rows

    def partial_embeddings(self, piece_frames: int) -> tuple[np.ndarray, tuple[int, ...]]:
        """Encoder output of the whole segment in attention windows of ``piece_frames`` (the encoder's
        streaming mode: AuT is trained with windows of 1 to 8 s), for partials: each completed window is
        encoded once, with the clamp of the moment, and never again; only the open one is encoded each time.

        Returns the rows and an identity per completed window (whose rows come first).
        """
        settled, mel, peak = self._spectrum(self.n)
        for k in range(len(self._pieces), settled // piece_frames):
            raw = self._raw[:, k * piece_frames : (k + 1) * piece_frames]
            self._pieces.append(self._encode(normalize_log_mel(raw, peak)))
        first = len(self._pieces) * piece_frames
        rows = list(self._pieces)
        if mel.shape[1] > first:
            rows.append(self._encode(normalize_log_mel(mel[:, first:], peak)))
        return np.concatenate(rows), tuple(id(r) for r in self._pieces)

    def complete_windows(self) -> None:
        """Encode the 8 s windows completed so far (exactly, as :meth:`embeddings` uses them), so that a
        final later finds them done."""
        settled = self._settle(self.n)
        if settled // WINDOW_FRAMES > len(self._windows):
            peak = float(self._raw[:, :settled].max())
            for k in range(settled // WINDOW_FRAMES):
                self._window(k, peak)

    def reset(self, keep_from: int) -> None:
        """Start the next segment at sample ``keep_from`` of this one: the samples after it are kept, every
        frame and window is dropped (their frames are counted from the new start)."""
        rest = self._audio[keep_from : self.n].copy()
        self.n = 0
        self._settled = 0
        self._windows = []
        self._pieces = []
        self.append(rest)

    def _spectrum(self, n: int) -> tuple[int, np.ndarray, float]:
        """For the first ``n`` samples: how many frames are settled, the raw log-mel of all their frames (the
        last few, which reflect at ``n``, computed now), and its peak (the clamp's reference)."""
        settled = self._settle(n)
        total = n_frames(n)
        mel = self._raw[:, :settled]
        if total > settled:
            mel = np.concatenate([mel, raw_log_mel(self._audio[:n], settled, total, self.n_mels)], axis=1)
        return settled, mel, float(mel.max())

    def _settle(self, n: int) -> int:
        """Compute the frames settled within the first ``n`` samples once; return how many there are."""
        target = settled_frames(self.n)
        if target > self._settled:
            self._raw[:, self._settled : target] = raw_log_mel(self._audio[: self.n], self._settled, target, self.n_mels)
            self._settled = target
        return settled_frames(n)

    def _window(self, k: int, peak: float) -> np.ndarray:
        """Encoder rows of completed window ``k`` under the clamp of ``peak``; encoded again if it changed."""
        if k < len(self._windows):
            w = self._windows[k]
            if w.peak == peak or w.low >= max(w.peak, peak) - 8.0:
                return w.embeds
            self.reencoded += 1
        raw = self._raw[:, k * WINDOW_FRAMES : (k + 1) * WINDOW_FRAMES]
        window = _Window(self._encode(normalize_log_mel(raw, peak)), peak, float(raw.min()))
        if k < len(self._windows):
            self._windows[k] = window
        else:
            self._windows.append(window)
        return window.embeds

    def window_embeddings(self) -> list[np.ndarray]:
        """Encoder rows of the completed windows encoded so far (as last encoded; see :meth:`window_version`)."""
        return [w.embeds for w in self._windows]

    def window_version(self) -> list[int]:
        """An identity per completed window's current rows (changes when a window is encoded again)."""
        return [id(w.embeds) for w in self._windows]
