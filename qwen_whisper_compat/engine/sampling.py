"""Choosing the next token from a logits vector: greedy, or temperature / top-k / top-p sampling, in numpy.

Every choice also reports the chosen token's log-probability under the model's own (temperature 1)
distribution, which is what ``avg_logprob`` averages, as in whisper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qwen_whisper_compat.errors import UnsupportedOptionError


@dataclass(frozen=True)
class SamplingOptions:
    """How to pick tokens. ``temperature == 0`` is greedy (the official default)."""

    temperature: float = 0.0
    #: Keep only the k most likely tokens (0 = no limit).
    top_k: int = 0
    #: Keep the smallest set of tokens whose probability reaches top_p (1.0 = no limit).
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise UnsupportedOptionError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise UnsupportedOptionError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise UnsupportedOptionError(f"top_p must be in (0, 1], got {self.top_p}")


class Sampler:
    """Stateful token chooser (owns the random generator of one decode)."""

    def __init__(self, options: SamplingOptions) -> None:
        self.options = options
        self._rng = np.random.default_rng(options.seed)
        self._buf: np.ndarray | None = None

    def log_normalizer(self, logits: np.ndarray) -> float:
        """``log(sum(exp(logits)))``: a token's log-probability is ``logits[token]`` minus this."""
        if self._buf is None or self._buf.shape != logits.shape:
            self._buf = np.empty_like(logits, dtype=np.float32)
        m = float(logits.max())
        np.subtract(logits, m, out=self._buf)
        np.exp(self._buf, out=self._buf)
        return m + float(np.log(self._buf.sum(dtype=np.float64)))

    def choose(self, logits: np.ndarray) -> int:
        """The next token id."""
        o = self.options
        if o.temperature == 0.0:
            return int(np.argmax(logits))
        k = o.top_k if 0 < o.top_k < logits.size else logits.size
        if k < logits.size:
            candidates = np.argpartition(logits, -k)[-k:]
        else:
            candidates = np.arange(logits.size)
        scaled = logits[candidates].astype(np.float64) / o.temperature
        probs = np.exp(scaled - scaled.max())
        probs /= probs.sum()
        if o.top_p < 1.0:
            order = np.argsort(-probs)
            keep = order[: int(np.searchsorted(np.cumsum(probs[order]), o.top_p) + 1)]
            candidates, probs = candidates[keep], probs[keep] / probs[keep].sum()
        return int(candidates[self._rng.choice(len(candidates), p=probs)])
