"""The GGUF text decoder: embeddings in, logits, tokens or hidden states out.

The native model, context, turns and KV sequences are :class:`~.llama_context.LlamaContext`'s; this module
chooses tokens on top of it. The prompt is injected as one embedding batch (text-token rows read from the
GGUF's ``token_embd`` plus the audio rows), which is what ``llama_batch_init(n, n_embd, 1)`` is for.
:meth:`GGUFDecoder.generate` (one sequence), :meth:`GGUFDecoder.generate_batch` (several, one KV stream each)
and :meth:`GGUFDecoder.generate_after` (on a kept prefix) choose every token through the same step
(:class:`.generation.SequenceState`). Each of them runs in one turn of the context (see :mod:`.turns`), so a
decoder shared by several threads serves them one at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qwen_whisper_compat.engine.generation import Generation, SequenceState, StepHook
from qwen_whisper_compat.engine.gguf_file import TokenEmbeddings
from qwen_whisper_compat.engine.llama_context import LlamaContext, Part
from qwen_whisper_compat.engine.sampling import Sampler, SamplingOptions
from qwen_whisper_compat.errors import DecodingError, ModelFolderError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BatchTiming", "GGUFDecoder", "Part"]


@dataclass(frozen=True)
class BatchTiming:
    """Where the time of one :meth:`GGUFDecoder.generate_batch` went."""

    prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float


@dataclass(frozen=True)
class _Prefilled:
    """A prompt evaluated in a scratch sequence and its first step's logits, kept for a retry of it."""

    prompt: np.ndarray  # held, so that the identity check below cannot match a new array at a reused address
    seq: int
    logits: np.ndarray


class GGUFDecoder(LlamaContext):
    """A GGUF text decoder in llama.cpp (see :class:`~.llama_context.LlamaContext` for the arguments).

    ``capture_hidden=True`` sets up :meth:`hidden_states` (final hidden states at chosen rows without computing
    the output head); such a decoder cannot generate.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        n_ctx: int = 4096,
        n_threads: int | None = None,
        embeddings: bool = False,
        exact: bool = False,
        n_gpu_layers: int = 0,
        capture_hidden: bool = False,
    ) -> None:
        self._prefilled: _Prefilled | None = None
        super().__init__(path, n_ctx, n_threads, embeddings, exact, n_gpu_layers, capture_hidden)
        self.token_embeddings = TokenEmbeddings(self.path)
        if self.token_embeddings.n_embd != self.n_embd:
            raise ModelFolderError(f"{self.path}: token_embd width differs from the model's n_embd")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cleared(self, seq: int) -> None:
        if self._prefilled is not None and self._prefilled.seq == seq:
            self._prefilled = None

    def _written(self, seq: int, position: int) -> None:
        super()._written(seq, position)
        p = self._prefilled
        if p is not None and p.seq == seq and position < p.prompt.shape[0]:
            self._prefilled = None

    def reset(self) -> None:
        """Empty the KV cache of every sequence that is not leased (leased ones keep theirs)."""
        with self.turns.turn():
            for seq in range(self.n_seq):
                if seq not in self.leased:
                    self.clear(seq)

    # ------------------------------------------------------------------------------------ generation
    def generate(
        self,
        prompt: np.ndarray,
        max_new_tokens: int,
        eos: Collection[int],
        sampling: SamplingOptions | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        on_step: StepHook | None = None,
    ) -> Generation:
        """Prefill the prompt embeddings ``[n, n_embd]`` as one batch in a free sequence, then decode token by
        token.

        Called again with the very same ``prompt`` array (a retry at another temperature) while nothing else
        wrote into its sequence, the prompt's KV cache and first-step logits are reused: only the generated
        part is dropped and decoded anew.

        Args:
            prompt: Prompt embeddings (text-token rows and audio rows).
            max_new_tokens: Token cap; hitting it ends the decode with ``stop="max_tokens"``.
            eos: Ids that end the decode.
            sampling: Greedy when omitted.
            should_stop: Called with the tokens so far after each step; True aborts the decode.
            on_step: Called after each step (see :data:`StepHook`).
        """
        self._check_can_generate()
        n = prompt.shape[0]
        with self.turns.turn():
            if n + max_new_tokens > self.n_ctx:
                raise ValueError(f"{n} prompt + {max_new_tokens} new tokens exceed the context of {self.n_ctx}")
            sequence = SequenceState(Sampler(sampling or SamplingOptions()), max_new_tokens, eos, should_stop, on_step)
            seq, logits = self._prefill(prompt)
            while (done := sequence.advance(logits)) is None:
                self.step(sequence.tokens[-1], n + len(sequence.tokens) - 1, seq)
                logits = self.logits_view(0)
            return done

    def _prefill(self, prompt: np.ndarray) -> tuple[int, np.ndarray]:
        """The sequence holding the prompt (evaluated now, or kept from the previous call) and the first
        step's logits."""
        n = prompt.shape[0]
        p = self._prefilled
        if p is not None and p.prompt is prompt and p.seq not in self.leased:
            self.keep(n, p.seq)
            return p.seq, p.logits
        (seq,) = self.scratch(1)
        self.eval_embeddings(prompt, 0, [n - 1], seq)
        logits = self.logits(n - 1)
        self._prefilled = _Prefilled(prompt, seq, logits)
        return seq, logits

    def generate_batch(
        self,
        prompts: Sequence[np.ndarray],
        max_new_tokens: Sequence[int],
        eos: Collection[int],
        sampling: SamplingOptions | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        on_step: Sequence[StepHook] | None = None,
    ) -> tuple[list[Generation], BatchTiming]:
        """Decode several prompts together, one free KV sequence each.

        Each prompt is prefilled on its own; then every step evaluates the next token of every unfinished
        sequence in one batch, so the weights are read once per step for all of them (decoding is bound by
        memory bandwidth, so a step of 8 sequences costs far less than 8 steps of one).

        Args:
            prompts: Prompt embeddings per sequence.
            max_new_tokens: Token cap per sequence.
            eos: Ids that end a sequence.
            sampling: Greedy when omitted; one sampler (and seed) per sequence.
            should_stop: Called with a sequence's tokens after each of its steps; True aborts that sequence.
            on_step: One hook per sequence, called after each of its steps (see :data:`StepHook`).

        Returns:
            The generations in input order, and where the time went (llama.cpp's perf counters file a
            multi-sequence step under prompt evaluation, so it is timed here).
        """
        self._check_can_generate()
        k = len(prompts)
        if k == 0:
            return [], BatchTiming(0, 0.0, 0.0)
        lengths = [p.shape[0] for p in prompts]
        hooks: Sequence[StepHook | None] = on_step if on_step is not None else [None] * k
        sequences = [
            SequenceState(Sampler(sampling or SamplingOptions()), cap, eos, should_stop, hook)
            for cap, hook in zip(max_new_tokens, hooks, strict=True)
        ]
        with self.turns.turn():
            self.ensure_context(max(n + m for n, m in zip(lengths, max_new_tokens, strict=True)) + 1)
            seqs = self.scratch(k)
            t0 = time.perf_counter()
            first: dict[int, np.ndarray] = {}
            for s, prompt in enumerate(prompts):
                self.eval_embeddings(prompt, 0, [lengths[s] - 1], seq=seqs[s])
                first[s] = self.logits(lengths[s] - 1)
            t1 = time.perf_counter()
            results: list[Generation | None] = [None] * k
            batch = self._llama.llama_batch_init(k, 0, 1)
            try:
                active = list(range(k))
                while active:
                    stepping = []
                    for row, s in enumerate(active):
                        logits = first.pop(s) if s in first else self.logits_view(row)
                        results[s] = sequences[s].advance(logits)
                        if results[s] is None:
                            stepping.append(s)
                    active = stepping
                    if active:
                        positions = [lengths[s] + len(sequences[s].tokens) - 1 for s in active]
                        tokens = [sequences[s].tokens[-1] for s in active]
                        self.step_batch(batch, tokens, positions, [seqs[s] for s in active])
            finally:
                self._llama.llama_batch_free(batch)
        timing = BatchTiming(sum(lengths), t1 - t0, time.perf_counter() - t1)
        return [r for r in results if r is not None], timing

    def generate_after(
        self,
        n_kept: int,
        rows: np.ndarray,
        max_new_tokens: int,
        eos: Collection[int],
        sampling: SamplingOptions | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        on_step: StepHook | None = None,
        draft: Sequence[int] = (),
        forced: int = 0,
        seq: int = 0,
    ) -> Generation:
        """Decode on top of a kept KV prefix: positions ``0..n_kept-1`` of sequence ``seq`` stay, ``rows``
        (prompt embeddings) follow them, and the tokens of ``draft`` after those, all in one batch.

        The first ``forced`` draft tokens are taken as they are (the prompt continues with them; they are not
        part of the result). Each later draft token is checked against the token the sampler chooses from the
        logits of the row before it, which the batch already computed: while they agree the token is
        accepted without a decoding step of its own; from the first disagreement on, the decode goes on
        step by step. So with greedy sampling the result is exactly what :meth:`generate` gives for the same
        prompt, only cheaper when the draft is right (speculative decoding with a draft from an earlier pass).

        Args:
            n_kept: KV positions kept from earlier calls (everything after them is dropped first).
            rows: Embeddings ``[n, n_embd]`` evaluated at ``n_kept..``; at least one row.
            max_new_tokens: Token cap of the result (forced draft tokens not counted).
            eos: Ids that end the decode.
            sampling: Greedy when omitted.
            should_stop: As for :meth:`generate`.
            on_step: As for :meth:`generate`; steps count from the first token after the forced ones.
            draft: Token ids to force and then to verify.
            forced: How many leading draft tokens are forced unchecked.
            seq: The KV sequence decoded in (the others stay as they are).
        """
        self._check_can_generate()
        if rows.shape[0] < 1 or not 0 <= forced <= len(draft):
            raise ValueError("generate_after needs at least one prompt row and 0 <= forced <= len(draft)")
        draft = list(draft)
        n_checked = len(draft) - forced
        start = n_kept + rows.shape[0] + forced  # position of the first generated token
        with self.turns.turn():
            if start + max_new_tokens > self.n_ctx:
                raise ValueError(f"{start} prompt + {max_new_tokens} new tokens exceed the context of {self.n_ctx}")
            if not 0 <= seq < self.n_seq:
                raise ValueError(f"sequence {seq} is not in this context of {self.n_seq}")
            self.keep(n_kept, seq)
            batch = np.concatenate([rows, self.token_embeddings(draft)]) if draft else rows
            n_rows = batch.shape[0]
            first = rows.shape[0] + forced - 1  # the row whose logits choose the first generated token
            self.eval_embeddings(batch, n_kept, list(range(first, n_rows)), seq=seq)
            sequence = SequenceState(Sampler(sampling or SamplingOptions()), max_new_tokens, eos, should_stop, on_step)
            for j in range(n_checked + 1):
                done = sequence.advance(self.logits_view(first + j))
                if done is not None:
                    self.keep(start + len(sequence.tokens), seq)
                    return done
                if j == n_checked or sequence.tokens[-1] != draft[forced + j]:
                    break  # the draft ends or was wrong from here: its later rows are not this decode's
            self.keep(start + len(sequence.tokens) - 1, seq)
            while True:
                self.step(sequence.tokens[-1], start + len(sequence.tokens) - 1, seq)
                if (done := sequence.advance(self.logits_view(0))) is not None:
                    return done

    def generate_cached(
        self, seq: int, parts: Sequence[Part], rows: np.ndarray, max_new_tokens: int, eos: Collection[int], *,
        sampling: SamplingOptions | None = None, should_stop: Callable[[list[int]], bool] | None = None,
        on_step: StepHook | None = None, draft: Sequence[int] = (), forced: int = 0,
    ) -> tuple[Generation, int]:  # fmt: skip
        """:meth:`generate_after` on the prompt ``rows`` in sequence ``seq``, keeping the leading ``parts`` of
        the prompt (their rows come first in ``rows``) that the sequence still holds; afterwards it holds all of
        ``parts``. Returns the decode and how many prompt rows were kept."""
        if sum(p.rows for p in parts) > rows.shape[0]:
            raise ValueError("the parts cover more rows than the prompt has")
        with self.turns.turn():
            kept = min(self.held(seq, parts), rows.shape[0] - 1)
            gen = self.generate_after(kept, rows[kept:], max_new_tokens, eos, sampling, should_stop, on_step,
                                      draft, forced, seq)  # fmt: skip
            self.record(seq, parts)
        return gen, kept

    def prefill(self, seq: int, parts: Sequence[Part], rows: np.ndarray) -> int:
        """Make sequence ``seq`` hold ``parts`` (whose rows are ``rows``), evaluating only the rows after those
        it still holds; returns how many rows it evaluated."""
        end = sum(p.rows for p in parts)
        if end != rows.shape[0]:
            raise ValueError(f"the parts cover {end} rows, the prompt has {rows.shape[0]}")
        with self.turns.turn():
            kept = self.held(seq, parts)
            if kept < end:
                self.keep(kept, seq)
                self.eval_embeddings(rows[kept:], kept, [], seq=seq)
            self.record(seq, parts)
        return end - kept

    def prompt_logits(self, prompt: np.ndarray) -> np.ndarray:
        """Logits after the last row of ``prompt`` (one pass in a free sequence, emptied again afterwards)."""
        n = prompt.shape[0]
        with self.turns.turn():
            self.ensure_context(n + 1)
            (seq,) = self.scratch(1)
            try:
                self.eval_embeddings(prompt, 0, [n - 1], seq)
                return self.logits(n - 1)
            finally:
                self.clear(seq)

    def _check_can_generate(self) -> None:
        self._check_open()
        if self._capture is not None:
            raise RuntimeError("a decoder made with capture_hidden=True cannot generate")

    # ----------------------------------------------------------------------------------- outputs
    def text(self, tokens: Sequence[int], skip: Collection[int] = ()) -> str:
        """Decode token ids to text, leaving out the ids in ``skip``; invalid UTF-8 is replaced.

        With ``skip`` = the special added tokens this is the official ``skip_special_tokens=True``
        (llama.cpp's own rule would also hide plain tokens that merely look special, such as ``</s>``).
        """
        return b"".join(self.token_bytes(t) for t in tokens if t not in skip).decode("utf-8", errors="replace")

    def tensor_rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Rows of a 2-D weight of the GGUF file as float32 (dequantized); KeyError if there is none."""
        return self.token_embeddings.index.rows(name, rows)

    def hidden_states(self, embeds: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """Final-norm hidden states ``[len(rows), n_embd]`` of one causal pass over ``embeds`` (positions
        0..n-1), read only at ``rows`` (increasing); the output head is not computed."""
        if self._capture is None:
            raise RuntimeError("hidden_states() needs a decoder made with capture_hidden=True")
        if list(rows) != sorted(set(rows)):
            raise ValueError("rows must be strictly increasing")
        with self.turns.turn():
            self.ensure_context(embeds.shape[0])
            (seq,) = self.scratch(1)
            self._capture.start()
            try:
                self.eval_embeddings(embeds, 0, rows, seq)
            finally:
                captured = self._capture.stop()
                self.clear(seq)
        if captured.shape[0] != len(rows):
            raise DecodingError(f"llama.cpp returned {captured.shape[0]} hidden states for {len(rows)} rows")
        return captured
