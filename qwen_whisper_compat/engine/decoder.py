"""The GGUF text decoder in llama.cpp: embeddings in, logits or hidden states out. The only llama_cpp user.

Everything native is owned by :class:`GGUFDecoder` (model, context, batches) and freed by ``close()``,
the context manager, or, as a last resort, ``__del__`` (which tolerates interpreter shutdown).
llama.cpp's own log lines are routed into ``logging`` (logger ``qwen_whisper_compat.llama``) through
llama.cpp's log callback: nothing is printed and no file descriptor is redirected.

The prompt is injected as one embedding batch (text-token rows read from the GGUF's ``token_embd`` plus
the audio rows), which is what ``llama_batch_init(n, n_embd, 1)`` is for.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qwen_whisper_compat.engine.gguf_file import GGUFIndex
from qwen_whisper_compat.engine.sampling import Sampler, SamplingOptions
from qwen_whisper_compat.errors import ConversionError, ModelFolderError

logger = logging.getLogger("qwen_whisper_compat.decoder")
_native_logger = logging.getLogger("qwen_whisper_compat.llama")

#: Our precision names -> llama.cpp file types (``q4_k`` is llama.cpp's Q4_K_M mix).
QUANT_TYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}

_init_lock = threading.Lock()
_initialised = False
_log_callback: Any = None  # keeps the ctypes callback alive for the life of the process
_pending: list[str] = []
_pending_level = logging.DEBUG
# ggml_log_level (ggml.h): 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
# llama.cpp's info output is a model dump per load; it goes to DEBUG so that INFO stays readable.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}


def _llama() -> Any:
    """Import llama_cpp, route its native log into logging, and initialise the backend once."""
    global _initialised, _log_callback
    import llama_cpp

    with _init_lock:
        if not _initialised:

            @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
            def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
                global _pending_level
                if level != 5:
                    _pending_level = _LEVELS.get(level, logging.DEBUG)
                _pending.append(text.decode("utf-8", errors="replace"))
                if _pending[-1].endswith("\n"):
                    line = "".join(_pending).rstrip()
                    _pending.clear()
                    # llama.cpp re-types the plain Qwen token "</s>" as a control token on every load; our
                    # text decoding uses the manifest's special ids, so this is noise, not a warning
                    level = logging.DEBUG if "was not control-type" in line else _pending_level
                    if line:
                        _native_logger.log(level, "%s", line)

            _log_callback = _on_log
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _initialised = True
    return llama_cpp


def default_threads() -> int:
    """Threads for llama.cpp: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def quantize_gguf(src: Path, dst: Path, precision: str, threads: int = 0) -> None:
    """Quantize an f16/f32 GGUF file with llama.cpp's own quantizer.

    Tensors whose rows do not fit the k-quant block (256) fall back to a compatible type, as
    ``llama-quantize`` does.
    """
    if precision not in QUANT_TYPES:
        raise ValueError(f"unknown GGUF quantization {precision!r}; expected one of {sorted(QUANT_TYPES)}")
    llama = _llama()
    params = llama.llama_model_quantize_default_params()
    params.ftype = getattr(llama, QUANT_TYPES[precision])
    params.nthread = threads or default_threads()
    rc = llama.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise ConversionError(f"llama.cpp failed to quantize {src.name} to {precision} (code {rc}); see the log")


class TokenEmbeddings:
    """Rows of the GGUF's ``token_embd.weight`` as float32, dequantized on demand."""

    def __init__(self, path: Path) -> None:
        self.index = GGUFIndex(path)
        info = self.index.tensors.get("token_embd.weight")
        if info is None or len(info.shape) != 2:
            raise ModelFolderError(f"{path} has no 2-D token_embd.weight tensor")
        self.n_embd, self.n_vocab = info.shape

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        """Embeddings of ``ids`` as a float32 ``[len(ids), n_embd]`` array."""
        return self.index.rows("token_embd.weight", np.asarray(ids, dtype=np.int64))


class _HiddenCapture:
    """A ggml scheduler callback that copies the final-norm hidden states ("result_norm") of the output
    rows while llama.cpp computes a batch, then stops that graph: the vocabulary head, which would cost
    ``n_outputs x n_vocab x n_embd`` multiply-adds for nothing, is never computed."""

    NAME = b"result_norm"

    def __init__(self, llama: Any, n_embd: int) -> None:
        from llama_cpp import _ggml

        lib = _ggml.libggml
        lib.ggml_get_name.argtypes, lib.ggml_get_name.restype = [ctypes.c_void_p], ctypes.c_char_p
        lib.ggml_nbytes.argtypes, lib.ggml_nbytes.restype = [ctypes.c_void_p], ctypes.c_size_t
        lib.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        lib.ggml_backend_tensor_get.restype = None
        self.rows: list[np.ndarray] = []
        self.active = False

        def callback(tensor: int, ask: bool, user_data: int) -> bool:
            if ask:  # do we want to see this node?
                return self.active and lib.ggml_get_name(tensor) == self.NAME
            size = lib.ggml_nbytes(tensor)
            rows = np.empty(size // 4, dtype=np.float32)
            lib.ggml_backend_tensor_get(tensor, rows.ctypes.data, 0, size)
            self.rows.append(rows.reshape(-1, n_embd))
            return False  # stop here: skip the output head

        self.callback = llama.ggml_backend_sched_eval_callback(callback)


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


@dataclass(frozen=True)
class BatchTiming:
    """Where the time of the last :meth:`GGUFDecoder.generate_batch` went."""

    prompt_tokens: int
    prefill_seconds: float
    decode_seconds: float


#: Called after each step with (step index, chosen token, logits, log-normalizer): the log-probability of
#: token t at that step is ``logits[t] - log_normalizer``. The logits view is only valid during the call.
StepHook = Callable[[int, int, np.ndarray, float], None]


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
        self._llama = llama = _llama()
        self._stack: ExitStack | None = ExitStack()
        self.path = Path(path)
        mparams = llama.llama_model_default_params()
        mparams.n_gpu_layers = n_gpu_layers
        model = llama.llama_model_load_from_file(str(self.path).encode(), mparams)
        if not model:
            raise ModelFolderError(f"llama.cpp could not load {self.path}; the GGUF file is damaged or not a decoder")
        self._stack.callback(llama.llama_model_free, model)
        self._model = model
        self._vocab = llama.llama_model_get_vocab(model)
        self.n_embd = int(llama.llama_model_n_embd(model))
        self.n_vocab = int(llama.llama_vocab_n_tokens(self._vocab))
        # M-RoPE architectures (qwen3vl, as written by the Qwen3-ASR-GGUF scripts) read 4 position planes
        # for embedding batches; with equal positions in the first three they compute plain RoPE
        rope = int(llama.llama_model_rope_type(model))
        mrope = (llama.LLAMA_ROPE_TYPE_MROPE, llama.LLAMA_ROPE_TYPE_IMROPE, llama.LLAMA_ROPE_TYPE_VISION)
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
        self._capture = _HiddenCapture(llama, self.n_embd) if capture_hidden else None
        self._stack.callback(self._free_context)
        self._step_batch = llama.llama_batch_init(1, 0, 1)
        self._stack.callback(llama.llama_batch_free, self._step_batch)
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
        llama = self._llama
        cparams = llama.llama_context_default_params()
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
            cparams.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._free_context()
        self._prefilled = None
        ctx = llama.llama_init_from_model(self._model, cparams)
        if not ctx:
            raise ModelFolderError(
                f"llama.cpp could not create a context of {n_seq} x {n_ctx} tokens for {self.path}"
            )
        self._ctx, self.n_ctx, self.n_seq = ctx, n_ctx, n_seq

    def _live(self) -> Any:
        """The native context; a clear error instead of a crash after ``close()``."""
        if self._ctx is None or getattr(self, "_stack", None) is None:
            raise RuntimeError(f"the decoder for {self.path.name} is closed")
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
            raise RuntimeError(f"llama_decode failed with code {rc}")

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
        self._live()
        if self._capture is not None:
            raise RuntimeError("a decoder made with capture_hidden=True cannot generate")
        n = prompt.shape[0]
        if n + max_new_tokens > self.n_ctx:
            raise ValueError(f"{n} prompt + {max_new_tokens} new tokens exceed the context of {self.n_ctx}")
        sampler = Sampler(sampling or SamplingOptions())
        first = self._prefill(prompt)
        tokens: list[int] = []
        logprobs: list[float] = []
        for step in range(max_new_tokens + 1):
            logits = first if step == 0 else self._logits_view(0)
            token = sampler.choose(logits)
            norm = sampler.log_normalizer(logits)
            if on_step is not None:
                on_step(step, token, logits, norm)
            if token in eos:
                return Generation(tokens, logprobs, "eos", float(logits[token]) - norm)
            if step == max_new_tokens:
                break
            tokens.append(token)
            logprobs.append(float(logits[token]) - norm)
            if should_stop is not None and should_stop(tokens):
                return Generation(tokens, logprobs, "aborted", None)
            self._step(token, n + step)
        return Generation(tokens, logprobs, "max_tokens", None)

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
        self._live()
        if self._capture is not None:
            raise RuntimeError("a decoder made with capture_hidden=True cannot generate")
        k = len(prompts)
        if k == 0:
            return []
        lengths = [p.shape[0] for p in prompts]
        self.ensure_context(max(n + m for n, m in zip(lengths, max_new_tokens, strict=True)) + 1, n_seq=k)
        self.reset()
        samplers = [Sampler(sampling or SamplingOptions()) for _ in range(k)]
        logits_of: dict[int, np.ndarray] = {}
        t0 = time.perf_counter()
        for s, prompt in enumerate(prompts):
            self.eval_embeddings(prompt, 0, [lengths[s] - 1], seq=s)
            logits_of[s] = self.logits(lengths[s] - 1)
        t1 = time.perf_counter()
        tokens: list[list[int]] = [[] for _ in range(k)]
        logprobs: list[list[float]] = [[] for _ in range(k)]
        results: list[Generation | None] = [None] * k
        batch = self._llama.llama_batch_init(k, 0, 1)
        try:
            active = list(range(k))
            while active:
                stepping = []
                for row, s in enumerate(active):
                    logits = logits_of[s] if s in logits_of else self._logits_view(row)
                    token = samplers[s].choose(logits)
                    norm = samplers[s].log_normalizer(logits)
                    if on_step is not None:
                        on_step[s](len(tokens[s]), token, logits, norm)
                    if token in eos:
                        results[s] = Generation(tokens[s], logprobs[s], "eos", float(logits[token]) - norm)
                    elif len(tokens[s]) == max_new_tokens[s]:
                        results[s] = Generation(tokens[s], logprobs[s], "max_tokens", None)
                    else:
                        tokens[s].append(token)
                        logprobs[s].append(float(logits[token]) - norm)
                        if should_stop is not None and should_stop(tokens[s]):
                            results[s] = Generation(tokens[s], logprobs[s], "aborted", None)
                        else:
                            stepping.append(s)
                logits_of.clear()
                active = stepping
                if not active:
                    break
                batch.n_tokens = len(active)
                for row, s in enumerate(active):
                    batch.token[row] = tokens[s][-1]
                    batch.pos[row] = lengths[s] + len(tokens[s]) - 1
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

    def _step(self, token: int, pos: int) -> None:
        b = self._step_batch
        b.n_tokens = 1
        b.token[0] = token
        b.pos[0] = pos
        b.n_seq_id[0] = 1
        b.seq_id[0][0] = 0
        b.logits[0] = 1
        self._decode(b)

    def _logits_view(self, row: int) -> np.ndarray:
        ptr = self._llama.llama_get_logits_ith(self._live(), row)
        if not ptr:
            raise ValueError(f"row {row} of the last batch has no logits")
        view: np.ndarray = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
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
        self._capture.rows, self._capture.active = [], True
        try:
            self.eval_embeddings(embeds, 0, rows)
        finally:
            self._capture.active = False
        captured = np.concatenate(self._capture.rows) if self._capture.rows else np.empty((0, self.n_embd))
        self._capture.rows = []
        if captured.shape[0] != len(rows):
            raise RuntimeError(f"llama.cpp returned {captured.shape[0]} hidden states for {len(rows)} rows")
        return captured

    def logits(self, row: int) -> np.ndarray:
        """Logits of batch row ``row`` of the last evaluation (a copy; -1 = last output)."""
        out: np.ndarray = self._logits_view(row).copy()
        return out

    def hidden(self, row: int) -> np.ndarray:
        """Final-norm hidden state of batch row ``row`` (context must have ``embeddings=True``)."""
        ptr = self._llama.llama_get_embeddings_ith(self._live(), row)
        if not ptr:
            raise ValueError(f"row {row} of the last batch has no hidden state (embeddings=False?)")
        out: np.ndarray = np.ctypeslib.as_array(ptr, shape=(self.n_embd,)).copy()
        return out
