"""The GGUF text decoder in llama.cpp: embeddings in, logits, tokens or hidden states out.

Everything native is owned by :class:`GGUFDecoder` (model, context, batches) and freed by ``close()``,
the context manager, or, as a last resort, ``__del__`` (which tolerates interpreter shutdown). The
``llama_cpp`` module comes from :mod:`.llama_runtime`, which routes llama.cpp's log into ``logging``.

The prompt is injected as one embedding batch (text-token rows read from the GGUF's ``token_embd`` plus
the audio rows), which is what ``llama_batch_init(n, n_embd, 1)`` is for. :meth:`GGUFDecoder.generate`
(one sequence) and :meth:`GGUFDecoder.generate_batch` (several, one KV stream each) choose every token
through the same step (:class:`.generation.SequenceState`).
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.generation import Generation, SequenceState, StepHook
from qwen_whisper_compat.engine.gguf_file import TokenEmbeddings
from qwen_whisper_compat.engine.hidden_capture import HiddenCapture
from qwen_whisper_compat.engine.llama_runtime import default_threads, llama, model_params
from qwen_whisper_compat.engine.sampling import Sampler, SamplingOptions
from qwen_whisper_compat.errors import DecodingError, ModelFolderError


@dataclass(frozen=True)
class BatchTiming:
    """Where the time of the last :meth:`GGUFDecoder.generate_batch` went."""

    prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float


class GGUFDecoder:
    """One llama.cpp model + context for a GGUF text decoder.

    Args:
        path: The GGUF file.
        n_ctx: Context size in tokens; one batch may fill all of it.
        n_threads: CPU threads (default: all available).
        embeddings: Also extract final hidden states (needed by the aligner).
        exact: f32 KV cache and no flash attention: logits within ~1e-5 of a float32 reference
            (slower and more memory; for parity checks).
        capture_hidden: Set up :meth:`hidden_states` (final hidden states at chosen rows without computing
            the output head). Such a decoder cannot generate.
        n_gpu_layers: Layers to offload when llama.cpp was built with a GPU backend.
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
        #: Tokens each sequence can hold, and how many sequences the context holds (see generate_batch).
        self.n_ctx = 0
        self.n_seq = 1
        self.last_batch: BatchTiming | None = None
        self._prefilled: tuple[np.ndarray, int, np.ndarray] | None = None
        #: Changes whenever the KV cache is cleared or the context recreated, so that a caller that keeps a
        #: prefix in the cache (a live session) sees when someone else used the decoder.
        self.cache_epoch = 0
        self._capture = HiddenCapture(lib, self.n_embd) if capture_hidden else None
        self._stack.callback(self._free_context)
        self._step_batch = lib.llama_batch_init(1, 0, 1)
        self._stack.callback(lib.llama_batch_free, self._step_batch)
        self.ensure_context(n_ctx)
        self.token_embeddings = TokenEmbeddings(self.path)
        if self.token_embeddings.n_embd != self.n_embd:
            raise ModelFolderError(f"{self.path}: token_embd width differs from the model's n_embd")

    # ------------------------------------------------------------------------------------- lifetime
    def ensure_context(self, n_ctx: int, n_seq: int = 1) -> None:
        """Make sure the context holds ``n_seq`` sequences of at least ``n_ctx`` tokens each (recreated,
        rounded up to 256 tokens, if smaller). Each sequence gets its own KV stream."""
        if self._ctx and n_ctx <= self.n_ctx and n_seq <= self.n_seq:
            return
        n_ctx = -(-max(n_ctx, self.n_ctx if self._ctx else 0) // 256) * 256
        n_seq = max(n_seq, self.n_seq if self._ctx else 1)
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
        self._prefilled = None
        self.cache_epoch += 1
        ctx = lib.llama_init_from_model(self._model, cparams)
        if not ctx:
            raise ModelFolderError(
                f"llama.cpp could not create a context of {n_seq} x {n_ctx} tokens for {self.path}"
            )
        self._ctx, self.n_ctx, self.n_seq = ctx, n_ctx, n_seq

    def _live(self) -> Any:
        """The native context; a clear error instead of a crash after ``close()``."""
        if self._ctx is None or getattr(self, "_stack", None) is None:
            raise DecodingError(f"the decoder for {self.path.name} is closed: load the model again")
        return self._ctx

    def _free_context(self) -> None:
        if self._ctx:
            self._llama.llama_free(self._ctx)
            self._ctx = None
            self.n_ctx = 0

    def close(self) -> None:
        """Free the native context and model (idempotent)."""
        stack = getattr(self, "_stack", None)
        if stack is not None:
            stack.close()
            self._stack = None

    def __enter__(self) -> GGUFDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: llama_cpp may already be gone
            pass

    # ----------------------------------------------------------------------------------- tokenizer
    def tokenize(self, text: str) -> list[int]:
        """Plain BPE of ``text``: no BOS, special-token text is not parsed."""
        self._live()
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (self._llama.llama_token * cap)()
        n = self._llama.llama_tokenize(self._vocab, data, len(data), buf, cap, False, False)
        if n < 0:
            raise RuntimeError(f"llama_tokenize needs {-n} slots")
        return list(buf[:n])

    def token_bytes(self, token: int) -> bytes:
        """The bytes a token stands for (special tokens render as their text)."""
        self._live()
        buf = ctypes.create_string_buffer(256)
        n = self._llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]

    # ------------------------------------------------------------------------------------ evaluation
    def reset(self) -> None:
        """Forget the KV cache (and any prompt kept for a retry)."""
        self._prefilled = None
        self.cache_epoch += 1
        self._llama.llama_memory_clear(self._llama.llama_get_memory(self._live()), True)

    def eval_embeddings(self, embeds: np.ndarray, start_pos: int, outputs: Sequence[int], seq: int = 0) -> None:
        """Run ``embeds`` (``[n, n_embd]``) at positions ``start_pos..`` of sequence ``seq`` and keep outputs
        for rows ``outputs``."""
        embeds = np.ascontiguousarray(embeds, dtype=np.float32)
        self._prefilled = None
        n = embeds.shape[0]
        if embeds.ndim != 2 or embeds.shape[1] != self.n_embd:
            raise ValueError(f"embeddings must be [n, {self.n_embd}], got {embeds.shape}")
        batch = self._llama.llama_batch_init(n * self._pos_planes, self.n_embd, 1)
        try:
            ctypes.memmove(batch.embd, embeds.ctypes.data, embeds.nbytes)
            self._fill(batch, n, start_pos, outputs, seq)
            if self._pos_planes > 1:  # plane-major: pos[j * n + i]; the 4th plane has no rotary dims
                pos = np.ctypeslib.as_array(batch.pos, shape=(n * self._pos_planes,))
                pos[n : 3 * n] = np.tile(pos[:n], 2)
                pos[3 * n :] = 0
            self._decode(batch)
        finally:
            self._llama.llama_batch_free(batch)

    def eval_tokens(self, ids: Sequence[int], start_pos: int, outputs: Sequence[int]) -> None:
        """Run token ``ids`` at positions ``start_pos..`` and keep outputs for rows ``outputs``."""
        n = len(ids)
        self._prefilled = None
        batch = self._llama.llama_batch_init(n, 0, 1)
        try:
            np.ctypeslib.as_array(batch.token, shape=(n,))[:] = ids
            self._fill(batch, n, start_pos, outputs)
            self._decode(batch)
        finally:
            self._llama.llama_batch_free(batch)

    def _fill(self, batch: Any, n: int, start_pos: int, outputs: Sequence[int], seq: int = 0) -> None:
        if start_pos + n > self.n_ctx:
            raise ValueError(f"{start_pos + n} tokens do not fit the context of {self.n_ctx}")
        batch.n_tokens = n
        np.ctypeslib.as_array(batch.pos, shape=(n,))[:] = np.arange(start_pos, start_pos + n, dtype=np.int32)
        np.ctypeslib.as_array(batch.n_seq_id, shape=(n,))[:] = 1
        flags = np.ctypeslib.as_array(batch.logits, shape=(n,))
        flags[:] = 0
        flags[np.asarray(outputs, dtype=np.int64)] = 1
        for i in range(n):
            batch.seq_id[i][0] = seq

    def _decode(self, batch: Any) -> None:
        rc = self._llama.llama_decode(self._live(), batch)
        if rc != 0:
            # 1: no room in the KV cache for the batch; 2: aborted; < 0: an error inside llama.cpp
            raise DecodingError(
                f"llama.cpp could not decode a batch of {batch.n_tokens} tokens with {self.path.name} "
                f"(llama_decode returned {rc}; its log, logger qwen_whisper_compat.llama, says why)"
            )

    def generate(
        self,
        prompt: np.ndarray,
        max_new_tokens: int,
        eos: Collection[int],
        sampling: SamplingOptions | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        on_step: StepHook | None = None,
    ) -> Generation:
        """Prefill the prompt embeddings ``[n, n_embd]`` as one batch, then decode token by token.

        Called again with the very same ``prompt`` array (a retry at another temperature), the prompt's
        KV cache and first-step logits are reused: only the generated part is dropped and decoded anew.

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
        if n + max_new_tokens > self.n_ctx:
            raise ValueError(f"{n} prompt + {max_new_tokens} new tokens exceed the context of {self.n_ctx}")
        sequence = SequenceState(Sampler(sampling or SamplingOptions()), max_new_tokens, eos, should_stop, on_step)
        logits = self._prefill(prompt)
        while (done := sequence.advance(logits)) is None:
            self._step(sequence.tokens[-1], n + len(sequence.tokens) - 1)
            logits = self._logits_view(0)
        return done

    def generate_batch(
        self,
        prompts: Sequence[np.ndarray],
        max_new_tokens: Sequence[int],
        eos: Collection[int],
        sampling: SamplingOptions | None = None,
        should_stop: Callable[[list[int]], bool] | None = None,
        on_step: Sequence[StepHook] | None = None,
    ) -> list[Generation]:
        """Decode several prompts together, one KV sequence each.

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
        """
        self._check_can_generate()
        k = len(prompts)
        if k == 0:
            return []
        lengths = [p.shape[0] for p in prompts]
        self.ensure_context(max(n + m for n, m in zip(lengths, max_new_tokens, strict=True)) + 1, n_seq=k)
        self.reset()
        hooks: Sequence[StepHook | None] = on_step if on_step is not None else [None] * k
        sequences = [
            SequenceState(Sampler(sampling or SamplingOptions()), cap, eos, should_stop, hook)
            for cap, hook in zip(max_new_tokens, hooks, strict=True)
        ]
        t0 = time.perf_counter()
        first: dict[int, np.ndarray] = {}
        for s, prompt in enumerate(prompts):
            self.eval_embeddings(prompt, 0, [lengths[s] - 1], seq=s)
            first[s] = self.logits(lengths[s] - 1)
        t1 = time.perf_counter()
        results: list[Generation | None] = [None] * k
        batch = self._llama.llama_batch_init(k, 0, 1)
        try:
            active = list(range(k))
            while active:
                stepping = []
                for row, s in enumerate(active):
                    logits = first.pop(s) if s in first else self._logits_view(row)
                    results[s] = sequences[s].advance(logits)
                    if results[s] is None:
                        stepping.append(s)
                active = stepping
                if not active:
                    break
                batch.n_tokens = len(active)
                for row, s in enumerate(active):
                    batch.token[row] = sequences[s].tokens[-1]
                    batch.pos[row] = lengths[s] + len(sequences[s].tokens) - 1
                    batch.n_seq_id[row] = 1
                    batch.seq_id[row][0] = s
                    batch.logits[row] = 1
                self._decode(batch)
        finally:
            self._llama.llama_batch_free(batch)
        self._prefilled = None
        # llama.cpp's perf counters file a multi-sequence step under prompt evaluation: time it here
        self.last_batch = BatchTiming(sum(lengths), t1 - t0, time.perf_counter() - t1)
        return [r for r in results if r is not None]

    def keep(self, n: int, seq: int = 0) -> None:
        """Drop the KV cache of sequence ``seq`` from position ``n`` on (positions ``0..n-1`` stay)."""
        if seq == 0:
            self._prefilled = None
        self._llama.llama_memory_seq_rm(self._llama.llama_get_memory(self._live()), seq, n, -1)

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
        """Decode on top of a kept KV prefix: positions ``0..n_kept-1`` stay, ``rows`` (prompt embeddings)
        follow them, and the tokens of ``draft`` after those, all in one batch.

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
            seq: The KV sequence decoded in (the others stay as they are; see :meth:`ensure_context`).
        """
        self._check_can_generate()
        if rows.shape[0] < 1 or not 0 <= forced <= len(draft):
            raise ValueError("generate_after needs at least one prompt row and 0 <= forced <= len(draft)")
        draft = list(draft)
        n_checked = len(draft) - forced
        start = n_kept + rows.shape[0] + forced  # position of the first generated token
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
            done = sequence.advance(self._logits_view(first + j))
            if done is not None:
                self.keep(start + len(sequence.tokens), seq)
                return done
            if j == n_checked or sequence.tokens[-1] != draft[forced + j]:
                break  # the draft ends or was wrong from here: its later rows are not this decode's
        self.keep(start + len(sequence.tokens) - 1, seq)
        while True:
            self._step(sequence.tokens[-1], start + len(sequence.tokens) - 1, seq)
            if (done := sequence.advance(self._logits_view(0))) is not None:
                return done

    def _check_can_generate(self) -> None:
        self._live()
        if self._capture is not None:
            raise RuntimeError("a decoder made with capture_hidden=True cannot generate")

    def _prefill(self, prompt: np.ndarray) -> np.ndarray:
        """Evaluate the prompt (or keep it from the previous call) and return the first step's logits."""
        n = prompt.shape[0]
        if self._prefilled is not None and self._prefilled[0] is prompt and self._prefilled[1] == n:
            self._llama.llama_memory_seq_rm(self._llama.llama_get_memory(self._live()), 0, n, -1)
            return self._prefilled[2]
        self.reset()
        self.eval_embeddings(prompt, 0, [n - 1])
        logits = self.logits(n - 1)
        self._prefilled = (prompt, n, logits)
        return logits

    def _step(self, token: int, pos: int, seq: int = 0) -> None:
        b = self._step_batch
        b.n_tokens = 1
        b.token[0] = token
        b.pos[0] = pos
        b.n_seq_id[0] = 1
        b.seq_id[0][0] = seq
        b.logits[0] = 1
        self._decode(b)

    def _logits_view(self, row: int) -> np.ndarray:
        return self._row_view(self._llama.llama_get_logits_ith, row, self.n_vocab, "logits")

    def _row_view(self, getter: Callable[[Any, int], Any], row: int, width: int, what: str) -> np.ndarray:
        """A numpy view of one output row of the last batch (valid until the next evaluation)."""
        ptr = getter(self._live(), row)
        if not ptr:
            raise ValueError(f"row {row} of the last batch has no {what}")
        view: np.ndarray = np.ctypeslib.as_array(ptr, shape=(width,))
        return view

    def perf(self) -> dict[str, float]:
        """llama.cpp's own cumulative timings of this context: prompt and generation tokens and milliseconds."""
        data = self._llama.llama_perf_context(self._live())
        return {
            "prompt_tokens": float(data.n_p_eval),
            "prompt_ms": float(data.t_p_eval_ms),
            "eval_tokens": float(data.n_eval),
            "eval_ms": float(data.t_eval_ms),
        }

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
        self.ensure_context(embeds.shape[0])
        self.reset()
        self._capture.start()
        try:
            self.eval_embeddings(embeds, 0, rows)
        finally:
            captured = self._capture.stop()
        if captured.shape[0] != len(rows):
            raise DecodingError(f"llama.cpp returned {captured.shape[0]} hidden states for {len(rows)} rows")
        return captured

    def logits(self, row: int) -> np.ndarray:
        """Logits of batch row ``row`` of the last evaluation (a copy; -1 = last output)."""
        out: np.ndarray = self._logits_view(row).copy()
        return out

    def hidden(self, row: int) -> np.ndarray:
        """Final-norm hidden state of batch row ``row`` (context must have ``embeddings=True``)."""
        getter = self._llama.llama_get_embeddings_ith
        out: np.ndarray = self._row_view(getter, row, self.n_embd, "hidden state (embeddings=False?)").copy()
        return out
