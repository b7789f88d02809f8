"""One llama.cpp model and context: its lifetime, its turns, its KV sequences and what each of them holds.

Everything native is owned by :class:`LlamaContext` (model, context, step batch) and freed by ``close()``, the
context manager, or, as a last resort, ``__del__`` (which tolerates interpreter shutdown). The ``llama_cpp``
module comes from :mod:`.llama_runtime`. Generation on top of it is :class:`~.decoder.GGUFDecoder`'s.

**Threads.** Every call that touches the context runs inside a turn of :attr:`LlamaContext.turns` (see
:mod:`.turns`), so a context shared by several threads is never entered by two at once. A caller that keeps
state in the context between calls holds one turn around them.

**KV sequences.** The context holds :attr:`LlamaContext.n_seq` sequences of :attr:`LlamaContext.n_ctx` tokens,
one KV stream each. A caller that keeps a sequence's cache between turns (a live stream) leases it
(:meth:`LlamaContext.lease`); work done within one turn takes a free one (:meth:`LlamaContext.scratch`) and
clears only that. A sequence's leading rows can be recorded as :class:`Part` s (rows named by what determines
their values: the same key means the same rows); every write into the sequence drops the records it
overwrites, so :meth:`LlamaContext.held` never claims rows that are no longer there. Growing the context
(more sequences, longer ones) recreates it: every cache is empty then, and the records say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.gguf_vocab import tokenize
from qwen_whisper_compat.engine.hidden_capture import HiddenCapture
from qwen_whisper_compat.engine.llama_runtime import default_threads, llama, model_params
from qwen_whisper_compat.engine.turns import Turns
from qwen_whisper_compat.errors import DecodingError, ModelFolderError


@dataclass(frozen=True)
class Part:
    """``rows`` consecutive prompt rows at the start of a KV sequence, named by ``key``: rows with equal keys
    (and counts) are equal, so a sequence that holds them need not evaluate them again."""

    key: Hashable
    rows: int


class LlamaContext:
    """One llama.cpp model + context.

    Args:
        path: The GGUF file.
        n_ctx: Tokens each sequence holds.
        n_threads: CPU threads (default: all available).
        embeddings: Also extract final hidden states.
        exact: f32 KV cache and no flash attention: logits within ~1e-5 of a float32 reference (slower and more
            memory; for parity checks).
        n_gpu_layers: Layers to offload when llama.cpp was built with a GPU backend.
        capture_hidden: Read final-norm hidden states mid-graph (see :mod:`.hidden_capture`).
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
        self._llama = lib = llama()
        self._stack: ExitStack | None = ExitStack()
        self.path = Path(path)
        #: Who runs inside this context now, and who goes next.
        self.turns = Turns()
        model = lib.llama_model_load_from_file(str(self.path).encode(), model_params(n_gpu_layers))
        if not model:
            raise ModelFolderError(f"llama.cpp could not load {self.path}; the GGUF file is damaged or not a decoder")
        self._stack.callback(lib.llama_model_free, model)
        self._model = model
        self._vocab = lib.llama_model_get_vocab(model)
        self.n_embd = int(lib.llama_model_n_embd(model))
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        # M-RoPE architectures (qwen3vl, as written by the Qwen3-ASR-GGUF scripts) read 4 position planes
        # for embedding batches; with equal positions in the first three they compute plain RoPE
        rope = int(lib.llama_model_rope_type(model))
        mrope = (lib.LLAMA_ROPE_TYPE_MROPE, lib.LLAMA_ROPE_TYPE_IMROPE, lib.LLAMA_ROPE_TYPE_VISION)
        self._pos_planes = 4 if rope in mrope else 1
        self._threads = n_threads or default_threads()
        self._embeddings = embeddings
        self._exact = exact
        self._ctx: Any = None
        #: Tokens each sequence can hold, and how many sequences the context holds.
        self.n_ctx = 0
        self.n_seq = 1
        #: Times the context was created (each time every KV cache starts empty).
        self.generation = 0
        self._leased: set[int] = set()
        self._lease_lock = threading.Lock()
        self._records: dict[int, tuple[Part, ...]] = {}
        self._capture = HiddenCapture(lib, self.n_embd) if capture_hidden else None
        self._stack.callback(self._free_context)
        self._step_batch = lib.llama_batch_init(1, 0, 1)
        self._stack.callback(lib.llama_batch_free, self._step_batch)
        self.ensure_context(n_ctx)

    # ------------------------------------------------------------------------------------- lifetime
    def ensure_context(self, n_ctx: int, n_seq: int = 1) -> None:
        """Make sure the context holds ``n_seq`` sequences of at least ``n_ctx`` tokens each (recreated,
        rounded up to 256 tokens, if smaller: every KV cache is then empty)."""
        with self.turns.turn():
            if self._ctx and n_ctx <= self.n_ctx and n_seq <= self.n_seq:
                return
            n_ctx = -(-max(n_ctx, self.n_ctx if self._ctx else 0) // 256) * 256
            n_seq = max(n_seq, self.n_seq if self._ctx else 1, max(self.leased, default=-1) + 1)
            lib = self._llama
            cparams = lib.llama_context_default_params()
            cparams.n_ctx = n_ctx * n_seq
            cparams.n_seq_max = n_seq
            cparams.kv_unified = False
            cparams.n_batch = n_ctx
            cparams.n_ubatch = min(n_ctx, 512)
            cparams.n_threads = self._threads
            cparams.n_threads_batch = self._threads
            cparams.embeddings = self._embeddings
            cparams.no_perf = False  # keep llama.cpp's own prompt/generation timings (see perf())
            if self._capture is not None:
                cparams.cb_eval = self._capture.callback
            if self._exact:
                # f16 KV and the CPU flash-attention kernel's f16 internals move logits by ~1e-3
                cparams.type_k = cparams.type_v = 0  # GGML_TYPE_F32
                cparams.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
            self._free_context()
            self._forget()
            self.generation += 1
            ctx = lib.llama_init_from_model(self._model, cparams)
            if not ctx:
                raise ModelFolderError(
                    f"llama.cpp could not create a context of {n_seq} x {n_ctx} tokens for {self.path}"
                )
            self._ctx, self.n_ctx, self.n_seq = ctx, n_ctx, n_seq

    def native(self) -> Any:
        """The native context (the caller holds the turn); a clear error instead of a crash after ``close()``."""
        self._check_open()
        return self._ctx

    def _check_open(self) -> None:
        if getattr(self, "_stack", None) is None:
            raise DecodingError(f"the decoder for {self.path.name} is closed: load the model again")

    def _free_context(self) -> None:
        if self._ctx:
            self._llama.llama_free(self._ctx)
            self._ctx = None
            self.n_ctx = 0

    def close(self) -> None:
        """Free the native context and model (idempotent; waits for a call in progress on another thread)."""
        stack = getattr(self, "_stack", None)
        if stack is not None:
            with self.turns.turn():
                stack.close()
                self._stack = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: llama_cpp may already be gone
            stack = getattr(self, "_stack", None)
            if stack is not None:
                stack.close()
                self._stack = None

    # ----------------------------------------------------------------------------------- sequences
    def lease(self, n: int) -> tuple[int, ...]:
        """Reserve ``n`` KV sequences for a caller that keeps their caches between turns. The context grows if
        it has too few free ones, leaving one more free for work within one turn, so that such work does not
        grow it later (growing empties every cache, the leased ones included). Give them back with
        :meth:`release`."""
        with self.turns.turn():
            ids = self._free_ids(n + 1)[:n]
            with self._lease_lock:
                self._leased.update(ids)
            for seq in ids:
                self.clear(seq)
            return ids

    def release(self, ids: Sequence[int]) -> None:
        """Give leased sequences back; ids not leased are ignored. Takes no turn (safe from a finalizer): the
        next user of a sequence clears it."""
        with self._lease_lock:
            self._leased.difference_update(ids)

    def scratch(self, n: int = 1) -> tuple[int, ...]:
        """``n`` sequences nobody leases, cleared, for work done within the caller's turn (which it must hold)."""
        if not self.turns.held:
            raise RuntimeError("scratch sequences are only valid inside a turn: hold decoder.turns.turn()")
        ids = self._free_ids(n)
        for seq in ids:
            self.clear(seq)
        return ids

    def _free_ids(self, n: int) -> tuple[int, ...]:
        free: list[int] = []
        seq = 0
        leased = self.leased
        while len(free) < n:
            if seq not in leased:
                free.append(seq)
            seq += 1
        if free[-1] >= self.n_seq:
            self.ensure_context(self.n_ctx, free[-1] + 1)
        return tuple(free)

    @property
    def leased(self) -> frozenset[int]:
        """The sequences leased now."""
        with self._lease_lock:
            return frozenset(self._leased)

    def clear(self, seq: int) -> None:
        """Empty the KV cache of sequence ``seq``."""
        with self.turns.turn():
            self._llama.llama_memory_seq_rm(self._llama.llama_get_memory(self.native()), seq, -1, -1)
            self._records.pop(seq, None)
            self._cleared(seq)

    def keep(self, n: int, seq: int = 0) -> None:
        """Drop the KV cache of sequence ``seq`` from position ``n`` on (positions ``0..n-1`` stay)."""
        with self.turns.turn():
            self._llama.llama_memory_seq_rm(self._llama.llama_get_memory(self.native()), seq, n, -1)
            self._written(seq, n)

    def held(self, seq: int, parts: Sequence[Part]) -> int:
        """Rows of the leading ``parts`` that sequence ``seq`` holds, in that order, at its start."""
        rows = 0
        for want, have in zip(parts, self._records.get(seq, ()), strict=False):
            if want != have:
                break
            rows += want.rows
        return rows

    def record(self, seq: int, parts: Sequence[Part]) -> None:
        """Note that sequence ``seq`` now holds ``parts`` at its start (the caller evaluated their rows there)."""
        self._records[seq] = tuple(parts)

    def _written(self, seq: int, position: int) -> None:
        """Positions from ``position`` on of sequence ``seq`` change: forget the parts that reach them."""
        kept, end = [], 0
        for part in self._records.get(seq, ()):
            end += part.rows
            if end > position:
                break
            kept.append(part)
        self._records[seq] = tuple(kept)

    def _cleared(self, seq: int) -> None:
        """Hook for subclasses: sequence ``seq`` was emptied."""

    def _forget(self) -> None:
        """Every cache is gone (a new context)."""
        self._records.clear()
        for seq in range(self.n_seq):
            self._cleared(seq)

    # ------------------------------------------------------------------------------------ evaluation
    def eval_embeddings(self, embeds: np.ndarray, start_pos: int, outputs: Sequence[int], seq: int = 0) -> None:
        """Run ``embeds`` (``[n, n_embd]``) at positions ``start_pos..`` of sequence ``seq`` and keep outputs
        for rows ``outputs``."""
        embeds = np.ascontiguousarray(embeds, dtype=np.float32)
        n = embeds.shape[0]
        if embeds.ndim != 2 or embeds.shape[1] != self.n_embd:
            raise ValueError(f"embeddings must be [n, {self.n_embd}], got {embeds.shape}")
        with self.turns.turn():
            batch = self._llama.llama_batch_init(n * self._pos_planes, self.n_embd, 1)
            try:
                ctypes.memmove(batch.embd, embeds.ctypes.data, embeds.nbytes)
                self._fill(batch, n, start_pos, outputs, seq)
                if self._pos_planes > 1:  # plane-major: pos[j * n + i]; the 4th plane has no rotary dims
                    pos = np.ctypeslib.as_array(batch.pos, shape=(n * self._pos_planes,))
                    pos[n : 3 * n] = np.tile(pos[:n], 2)
                    pos[3 * n :] = 0
                self.decode_batch(batch)
            finally:
                self._llama.llama_batch_free(batch)

    def eval_tokens(self, ids: Sequence[int], start_pos: int, outputs: Sequence[int], seq: int = 0) -> None:
        """Run token ``ids`` at positions ``start_pos..`` of sequence ``seq`` and keep outputs for rows ``outputs``."""
        n = len(ids)
        with self.turns.turn():
            batch = self._llama.llama_batch_init(n, 0, 1)
            try:
                np.ctypeslib.as_array(batch.token, shape=(n,))[:] = ids
                self._fill(batch, n, start_pos, outputs, seq)
                self.decode_batch(batch)
            finally:
                self._llama.llama_batch_free(batch)

    def _fill(self, batch: Any, n: int, start_pos: int, outputs: Sequence[int], seq: int) -> None:
        if start_pos + n > self.n_ctx:
            raise ValueError(f"{start_pos + n} tokens do not fit the context of {self.n_ctx}")
        if not 0 <= seq < self.n_seq:
            raise ValueError(f"sequence {seq} is not in this context of {self.n_seq}")
        batch.n_tokens = n
        np.ctypeslib.as_array(batch.pos, shape=(n,))[:] = np.arange(start_pos, start_pos + n, dtype=np.int32)
        np.ctypeslib.as_array(batch.n_seq_id, shape=(n,))[:] = 1
        flags = np.ctypeslib.as_array(batch.logits, shape=(n,))
        flags[:] = 0
        flags[np.asarray(outputs, dtype=np.int64)] = 1
        for i in range(n):
            batch.seq_id[i][0] = seq
        self._written(seq, start_pos)

    def step(self, token: int, pos: int, seq: int = 0) -> None:
        """Evaluate one token at ``pos`` of sequence ``seq`` (its logits become row 0); the caller holds the turn."""
        b = self._step_batch
        b.n_tokens = 1
        b.token[0] = token
        b.pos[0] = pos
        b.n_seq_id[0] = 1
        b.seq_id[0][0] = seq
        b.logits[0] = 1
        self._written(seq, pos)
        self.decode_batch(b)

    def step_batch(self, batch: Any, tokens: Sequence[int], positions: Sequence[int], seqs: Sequence[int]) -> None:
        """Evaluate one token per sequence in ``batch`` (from ``llama_batch_init(k, 0, 1)``), each with logits."""
        batch.n_tokens = len(tokens)
        for row, (token, pos, seq) in enumerate(zip(tokens, positions, seqs, strict=True)):
            batch.token[row] = token
            batch.pos[row] = pos
            batch.n_seq_id[row] = 1
            batch.seq_id[row][0] = seq
            batch.logits[row] = 1
            self._written(seq, pos)
        self.decode_batch(batch)

    def decode_batch(self, batch: Any) -> None:
        """``llama_decode`` of a filled batch, with a clear error when llama.cpp refuses it."""
        if not self.turns.held:
            raise RuntimeError("llama_decode outside a turn: hold decoder.turns.turn()")
        rc = self._llama.llama_decode(self.native(), batch)
        if rc != 0:
            # 1: no room in the KV cache for the batch; 2: aborted; < 0: an error inside llama.cpp
            raise DecodingError(
                f"llama.cpp could not decode a batch of {batch.n_tokens} tokens with {self.path.name} "
                f"(llama_decode returned {rc}; its log, logger qwen_whisper_compat.llama, says why)"
            )

    # --------------------------------------------------------------------------------------- outputs
    def logits_view(self, row: int) -> np.ndarray:
        """A numpy view of the logits of batch row ``row`` of the last evaluation (valid until the next one)."""
        return self._row_view(self._llama.llama_get_logits_ith, row, self.n_vocab, "logits")

    def _row_view(self, getter: Callable[[Any, int], Any], row: int, width: int, what: str) -> np.ndarray:
        ptr = getter(self.native(), row)
        if not ptr:
            raise ValueError(f"row {row} of the last batch has no {what}")
        view: np.ndarray = np.ctypeslib.as_array(ptr, shape=(width,))
        return view

    def logits(self, row: int) -> np.ndarray:
        """Logits of batch row ``row`` of the last evaluation (a copy; -1 = last output)."""
        with self.turns.turn():
            out: np.ndarray = self.logits_view(row).copy()
        return out

    def hidden(self, row: int) -> np.ndarray:
        """Final-norm hidden state of batch row ``row`` (context must have ``embeddings=True``)."""
        getter = self._llama.llama_get_embeddings_ith
        with self.turns.turn():
            out: np.ndarray = self._row_view(getter, row, self.n_embd, "hidden state (embeddings=False?)").copy()
        return out

    def perf(self) -> dict[str, float]:
        """llama.cpp's own cumulative timings of this context: prompt and generation tokens and milliseconds."""
        with self.turns.turn():
            data = self._llama.llama_perf_context(self.native())
        return {
            "prompt_tokens": float(data.n_p_eval),
            "prompt_ms": float(data.t_p_eval_ms),
            "eval_tokens": float(data.n_eval),
            "eval_ms": float(data.t_eval_ms),
        }

    # ----------------------------------------------------------------------------------- tokenizer
    def tokenize(self, text: str) -> list[int]:
        """Plain BPE of ``text``: no BOS, special-token text is not parsed (reads only the model's vocabulary:
        needs no turn)."""
        self._check_open()
        return tokenize(self._llama, self._vocab, text)

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (special tokens render as their text)."""
        self._check_open()
        buf = ctypes.create_string_buffer(256)
        n = self._llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]
