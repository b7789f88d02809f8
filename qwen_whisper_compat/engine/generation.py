"""One decode, token by token: the result of a decode and the step that chooses each token and decides when a
sequence ends. :meth:`.decoder.GGUFDecoder.generate` (one sequence) and ``generate_batch`` (several in one
batch) both advance their sequences through :class:`SequenceState`, so both stop by the same rules."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qwen_whisper_compat.engine.sampling import Sampler


@dataclass(frozen=True)
class Generation:
    """The result of one autoregressive decode."""

    #: Generated ids, the end-of-sequence token excluded.
    tokens: list[int]
    #: Log-probability of each generated token under the model (temperature 1).
    logprobs: list[float]
    #: Why it stopped: an end-of-sequence token, the token cap, or the caller's stop check.
    stop: Literal["eos", "max_tokens", "aborted"]
    #: Log-probability of the end-of-sequence token that ended it (``None`` unless ``stop == "eos"``).
    eos_logprob: float | None


#: Called after each step with (step index, chosen token, logits, log-normalizer): the log-probability of
#: token t at that step is ``logits[t] - log_normalizer``. The logits view is only valid during the call.
StepHook = Callable[[int, int, np.ndarray, float], None]


class SequenceState:
    """One sequence being decoded: its sampler, the tokens chosen so far, and the rules that end it."""

    def __init__(
        self,
        sampler: Sampler,
        max_new_tokens: int,
        eos: Collection[int],
        should_stop: Callable[[list[int]], bool] | None,
        on_step: StepHook | None,
    ) -> None:
        self.sampler, self.max_new_tokens, self.eos = sampler, max_new_tokens, eos
        self.should_stop, self.on_step = should_stop, on_step
        self.tokens: list[int] = []
        self.logprobs: list[float] = []

    def advance(self, logits: np.ndarray) -> Generation | None:
        """Choose the next token from ``logits``: ``None`` when the sequence goes on (the token is then the
        last of :attr:`tokens` and must be evaluated), else the finished :class:`Generation`."""
        step = len(self.tokens)
        token = self.sampler.choose(logits)
        norm = self.sampler.log_normalizer(logits)
        if self.on_step is not None:
            self.on_step(step, token, logits, norm)
        if token in self.eos:
            return Generation(self.tokens, self.logprobs, "eos", float(logits[token]) - norm)
        if step == self.max_new_tokens:
            return Generation(self.tokens, self.logprobs, "max_tokens", None)
        self.tokens.append(token)
        self.logprobs.append(float(logits[token]) - norm)
        if self.should_stop is not None and self.should_stop(self.tokens):
            return Generation(self.tokens, self.logprobs, "aborted", None)
        return None
