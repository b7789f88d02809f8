"""Audio samples in, transcribed chunks out: chunking, prompting, decoding with fallback, and overlap.

For each chunk (cut at a quiet point, see chunking.py): log-mel -> ONNX encoder -> prompt embeddings ->
GGUF decode (-> forced alignment). With ``overlap``, chunk i+1 is encoded and chunk i-1 aligned on worker
threads while chunk i decodes (the native runtimes release the GIL); by default only when the encoder runs
on an accelerator. The previous chunk's
text is carried into the next prompt's context; its audio is not re-encoded or re-prefilled.

A decode that loops (few distinct tokens at the end) is stopped early and, like one whose text compresses
too well (gzip ratio above 2.4, whisper's test), retried at the next temperature; the last temperature's
result is kept whatever it is. Every decode is capped by a token budget derived from the chunk length, and
a chunk that hit the cap says so (``truncated``) instead of being silently cut.

This module knows nothing about whisper result shapes: it yields :class:`ChunkResult` objects.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from qwen_whisper_compat.engine.aligner import ForcedAligner, WordTiming
from qwen_whisper_compat.engine.chunking import split_at_quiet_points
from qwen_whisper_compat.engine.decoder import Generation, GGUFDecoder
from qwen_whisper_compat.engine.encoder import load_encoder, select_providers
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.modeldir import ModelDir, SpecialTokens, load_model_dir
from qwen_whisper_compat.engine.prompt import asr_prompt, language_name, parse_output
from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.engine.words import MissingExtraError
from qwen_whisper_compat.errors import ModelFolderError

logger = logging.getLogger("qwen_whisper_compat.pipeline")

#: The fallback temperatures of whisper; the first one is greedy decoding.
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class TranscribeOptions:
    """Everything that shapes one transcription. Validated on creation."""

    #: Language to force, as a prompt name (``"English"``) or whisper code (``"en"``); ``None`` lets the
    #: model detect it per chunk. Checked against the model's languages when a transcription starts.
    language: str | None = None
    #: Free text for the system turn: hot words, names, background.
    context: str = ""
    #: Put ``context`` into every chunk's prompt (else only the first chunk's).
    carry_initial_context: bool = True
    #: Put the end of the previous chunk's text into the next chunk's prompt.
    carry_previous_text: bool = True
    #: How many characters of the previous chunk's text to carry.
    previous_text_chars: int = 200
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = 0
    #: Retry when the text's gzip compression ratio is above this (``None`` = never).
    compression_ratio_threshold: float | None = 2.4
    #: Retry when the average token log-probability is below this (``None`` = never).
    logprob_threshold: float | None = None
    #: A decode whose last ``loop_window`` tokens hold at most ``loop_distinct`` distinct ids is looping.
    loop_window: int = 15
    loop_distinct: int = 3
    #: Token cap per chunk; ``None`` = ``token_cap_base + tokens_per_second * chunk seconds``.
    max_new_tokens: int | None = None
    tokens_per_second: float = 12.0
    token_cap_base: int = 16
    #: Target chunk length and how far around it to look for a quiet point. 30 s measured fastest on the
    #: 0.6B shape (20 s carries more context per audio second, 60 s decodes slower over a longer cache).
    chunk_seconds: float = 30.0
    search_seconds: float = 5.0
    #: Encode the next chunk while the current one decodes. ``None``: only when the encoder runs on an
    #: accelerator; on a 2-core CPU both runtimes compete for the same cores and it measured no faster.
    overlap: bool | None = None
    #: Time every word with the forced aligner (the Transcriber needs one); chunk times then snap to the
    #: first and last word.
    word_timestamps: bool = False
    #: With ``word_timestamps``: a chunk the aligner cannot handle (a language it was not trained on, or
    #: one whose word splitter needs a missing extra) gets ``words=None`` and a logged warning instead of
    #: an error.
    align_best_effort: bool = False
    #: Benchmarks only: decode exactly the token cap, ignoring end-of-sequence tokens.
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be a non-empty sequence of values >= 0, got {self.temperatures}")
        if self.chunk_seconds <= 0 or self.search_seconds < 0 or self.search_seconds >= self.chunk_seconds:
            raise ValueError("chunk_seconds must be > 0 and 0 <= search_seconds < chunk_seconds")
        if self.loop_window < 2 or self.loop_distinct < 1:
            raise ValueError("loop_window must be >= 2 and loop_distinct >= 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        SamplingOptions(top_k=self.top_k, top_p=self.top_p)  # validates both

    def token_cap(self, seconds: float) -> int:
        """The token budget of a chunk of ``seconds``."""
        return self.max_new_tokens or max(1, self.token_cap_base + math.ceil(self.tokens_per_second * seconds))


@dataclass(frozen=True)
class ChunkResult:
    """One transcribed chunk of the input."""

    index: int
    #: Position in the input, in seconds.
    start: float
    end: float
    text: str
    #: Token ids of ``text`` (the language header and end-of-sequence excluded).
    tokens: tuple[int, ...]
    #: Prompt language name detected (or forced); ``""`` for no speech or no header.
    language: str
    avg_logprob: float
    compression_ratio: float
    #: Probability the model gave to "no speech" (``language None``; with a forced language, an
    #: immediate end of sequence).
    no_speech_prob: float
    #: Temperature of the decode that was kept.
    temperature: float
    #: The decode hit the token cap: the text may be incomplete.
    truncated: bool
    #: The kept decode still failed the repetition checks (every temperature was tried).
    repetitive: bool
    #: Word timings (``word_timestamps=True``), else ``None``.
    words: tuple[WordTiming, ...] | None = None
    #: The chunk's audio span in seconds (``start``/``end`` snap to the words when they are timed).
    audio_start: float = 0.0
    audio_end: float = 0.0


@dataclass
class PipelineStats:
    """Where the time of the last transcription went (seconds; stages overlap when ``overlap`` is on)."""

    audio_seconds: float = 0.0
    chunks: int = 0
    encode_seconds: float = 0.0
    #: Audio rows and text tokens of the prompts built (once per chunk).
    prompt_audio_tokens: int = 0
    prompt_text_tokens: int = 0
    #: Tokens llama.cpp actually evaluated in prompt batches (retries reuse the prompt's cache).
    prompt_tokens: int = 0
    prefill_seconds: float = 0.0
    generated_tokens: int = 0
    generate_seconds: float = 0.0
    decode_wall_seconds: float = 0.0
    align_seconds: float = 0.0
    wall_seconds: float = 0.0
    attempts: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Encoded:
    index: int
    start: int
    end: int
    embeds: np.ndarray
    seconds: float


def compression_ratio(text: str) -> float:
    """whisper's gzip compression ratio of a text (0 for empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def check_vocabulary(decoder: GGUFDecoder, tokens: SpecialTokens, where: object) -> None:
    """Fail clearly when the GGUF's vocabulary does not put the special tokens where the model folder says."""
    expected = {
        tokens.im_start: b"<|im_start|>",
        tokens.im_end: b"<|im_end|>",
        tokens.audio_start: b"<|audio_start|>",
        tokens.audio_pad: b"<|audio_pad|>",
        tokens.asr_text: b"<asr_text>",
    }
    wrong = {t: decoder.token_bytes(t) for t, text in expected.items() if decoder.token_bytes(t) != text}
    if wrong:
        raise ModelFolderError(
            f"the decoder in {where} does not have the Qwen3-ASR special tokens (id {next(iter(wrong))} is "
            f"{next(iter(wrong.values()))!r}); it is not a Qwen3-ASR model"
        )


def chunk_context(options: TranscribeOptions, index: int, previous_text: str) -> str:
    """The system-turn context of chunk ``index``."""
    parts = []
    if options.context and (index == 0 or options.carry_initial_context):
        parts.append(options.context)
    if options.carry_previous_text and previous_text and options.previous_text_chars > 0:
        parts.append(previous_text[-options.previous_text_chars :])
    return "\n".join(parts)


class Transcriber:
    """A loaded ASR model folder: encoder session + decoder context, reused across transcriptions.

    Args:
        model: A model folder path or a validated :class:`ModelDir` of kind ``asr``.
        threads: CPU threads for both runtimes (0 = all available).
        device: Where the encoder runs: ``cpu``, ``cuda``, ``dml``, ``coreml`` or ``auto``.
        n_gpu_layers: Decoder layers to offload when llama.cpp has a GPU backend.
        exact: Decode with an f32 KV cache and no flash attention (float32-close to the reference model;
            slower, for parity checks).
        aligner: A forced aligner (or its model folder) for ``word_timestamps=True``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelDir,
        threads: int = 0,
        device: str = "cpu",
        n_gpu_layers: int = 0,
        exact: bool = False,
        aligner: ForcedAligner | str | os.PathLike[str] | ModelDir | None = None,
    ) -> None:
        self.model_dir = model if isinstance(model, ModelDir) else load_model_dir(model, kind="asr")
        manifest = self.model_dir.manifest
        self.tokens = manifest.tokens
        self.encoder = load_encoder(self.model_dir, providers=select_providers(device), threads=threads)
        self.decoder = GGUFDecoder(
            self.model_dir.file_path("decoder"),
            n_ctx=2048,
            n_threads=threads or None,
            n_gpu_layers=n_gpu_layers,
            exact=exact,
        )
        check_vocabulary(self.decoder, self.tokens, self.model_dir.path)
        self._header_token = self.decoder.tokenize("language")[0]
        self._none_token = self.decoder.tokenize(" None")[0]
        self._special = frozenset(self.tokens.special)
        self.stats = PipelineStats()
        self._warned: set[str] = set()
        if aligner is None or isinstance(aligner, ForcedAligner):
            self.aligner = aligner
        else:
            self.aligner = ForcedAligner(aligner, threads=threads, device=device, exact=exact)

    def close(self) -> None:
        """Free the decoders' native memory."""
        self.decoder.close()
        if self.aligner is not None:
            self.aligner.close()

    def __enter__(self) -> Transcriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- public
    def transcribe(self, audio: np.ndarray, options: TranscribeOptions | None = None) -> list[ChunkResult]:
        """Transcribe 16 kHz mono float32 samples; all chunks at once."""
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio: np.ndarray, options: TranscribeOptions | None = None) -> Iterator[ChunkResult]:
        """Transcribe 16 kHz mono float32 samples, yielding each chunk as soon as it is decoded."""
        options, audio, bounds = self._start(audio, options)
        stats = self.stats
        t0 = time.perf_counter()
        previous = ""
        overlap = options.overlap
        if overlap is None:
            overlap = self.encoder.providers[0] != "CPUExecutionProvider"
        executor = ThreadPoolExecutor(1, thread_name_prefix="qwc-encode") if overlap else None
        aligning = None
        if overlap and options.word_timestamps:
            aligning = ThreadPoolExecutor(1, thread_name_prefix="qwc-align")
        try:
            pending: Future[_Encoded] | None = None
            aligned: Future[ChunkResult] | None = None  # chunk i-1 aligns while chunk i decodes
            for i, (a, b) in enumerate(bounds):
                if executor is None:
                    encoded = self._encode(i, audio, a, b)
                else:
                    encoded = (pending or executor.submit(self._encode, i, audio, a, b)).result()
                    if i + 1 < len(bounds):  # runs while this chunk decodes
                        pending = executor.submit(self._encode, i + 1, audio, *bounds[i + 1])
                stats.encode_seconds += encoded.seconds
                result = self._decode(encoded, options, chunk_context(options, i, previous))
                previous = result.text
                if aligning is not None:
                    done, aligned = aligned, aligning.submit(self._align, result, audio, a, b, options)
                    if done is None:
                        continue
                    result = done.result()
                elif options.word_timestamps:
                    result = self._align(result, audio, a, b, options)
                stats.wall_seconds = time.perf_counter() - t0
                yield result
            if aligned is not None:
                result = aligned.result()
                stats.wall_seconds = time.perf_counter() - t0
                yield result
        finally:
            for pool in (executor, aligning):
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)

    def tokenize(self, text: str) -> list[int]:
        """The decoder's token ids of plain ``text``."""
        return self.decoder.tokenize(text)

    def detokenize(self, ids: list[int]) -> str:
        """The text of token ids (special tokens dropped)."""
        return self.decoder.text(ids, self._special)

    @property
    def languages(self) -> tuple[str, ...]:
        """Prompt names of the languages the model transcribes."""
        return tuple(self.model_dir.manifest.languages)

    def language_probs(self, mel: np.ndarray) -> dict[str, float]:
        """Probability of each supported language (prompt names) for the speech in a log-mel spectrogram.

        The prompt is followed by the ``language`` header the model writes first; the distribution of the
        next token, restricted to the first tokens of the language names (all distinct in the Qwen
        vocabulary), is renormalised over the supported languages.
        """
        embeds = self.encoder(np.asarray(mel, dtype=np.float32))
        prompt = asr_prompt(self.tokens, self.decoder.tokenize, len(embeds))
        ids = [*prompt.ids, self._header_token]
        rows = self.decoder.token_embeddings(ids)
        rows[prompt.audio_offset : prompt.audio_offset + prompt.n_audio] = embeds
        self.decoder.ensure_context(len(ids) + 1)
        self.decoder.reset()
        self.decoder.eval_embeddings(rows, 0, [len(ids) - 1])
        logits = self.decoder.logits(len(ids) - 1).astype(np.float64)
        self.decoder.reset()
        names = self.languages
        firsts = np.array([self.decoder.tokenize(" " + name)[0] for name in names])
        scores = logits[firsts]
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        return {name: float(p) for name, p in zip(names, probs, strict=True)}

    def decode_features(self, mel: np.ndarray, options: TranscribeOptions | None = None) -> ChunkResult:
        """Decode one log-mel spectrogram as a single chunk (no chunking, no context carry-over)."""
        options = options or TranscribeOptions()
        if options.language is not None:
            options = dataclasses.replace(options, language=language_name(options.language, self.languages))
        mel = np.asarray(mel, dtype=np.float32)
        embeds = self.encoder(mel)
        n_samples = mel.shape[-1] * HOP_LENGTH
        self.decoder.ensure_context(len(embeds) + options.token_cap(n_samples / SAMPLE_RATE) + 128)
        return self._decode(_Encoded(0, 0, n_samples, embeds, 0.0), options, options.context)

    def transcribe_batched(
        self, audio: np.ndarray, options: TranscribeOptions | None = None, batch_size: int = 8
    ) -> Iterator[ChunkResult]:
        """Transcribe with ``batch_size`` chunks decoded together (see :meth:`GGUFDecoder.generate_batch`).

        Chunks are independent here: no previous text is carried (the context text still is), and the
        first temperature decodes every chunk; a chunk that fails the repetition checks is decoded again
        on its own with the remaining temperatures. Results come in input order.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        options, audio, bounds = self._start(audio, options)
        stats = self.stats
        t0 = time.perf_counter()
        for first in range(0, len(bounds), batch_size):
            group = [self._encode(i, audio, a, b) for i, (a, b) in enumerate(bounds[first : first + batch_size], first)]
            stats.encode_seconds += sum(e.seconds for e in group)
            for enc, result in zip(group, self._decode_group(group, options), strict=True):
                if options.word_timestamps:
                    result = self._align(result, audio, enc.start, enc.end, options)
                stats.wall_seconds = time.perf_counter() - t0
                yield result

    def _decode_group(self, group: list[_Encoded], options: TranscribeOptions) -> list[ChunkResult]:
        """Decode encoded chunks together at the first temperature; retry the failures one by one."""
        context = options.context
        prompts, caps = [], []
        for enc in group:
            prompt = asr_prompt(self.tokens, self.decoder.tokenize, len(enc.embeds), context, options.language)
            embeds = self.decoder.token_embeddings(prompt.ids)
            embeds[prompt.audio_offset : prompt.audio_offset + prompt.n_audio] = enc.embeds
            prompts.append(embeds)
            caps.append(options.token_cap((enc.end - enc.start) / SAMPLE_RATE))
            self.stats.prompt_audio_tokens += prompt.n_audio
            self.stats.prompt_text_tokens += len(prompt.ids) - prompt.n_audio
        eos = () if options.ignore_eos else self.tokens.eos
        temperature = options.temperatures[0]
        sampling = SamplingOptions(temperature, options.top_k, options.top_p, options.seed)
        last = len(options.temperatures) == 1
        guard = None if last else _LoopGuard(options.loop_window, options.loop_distinct)
        forced = options.language is not None
        probes = [_NoSpeechProbe(forced, self._header_token, self._none_token, eos) for _ in group]
        t = time.perf_counter()
        gens = self.decoder.generate_batch(prompts, caps, eos, sampling, should_stop=guard, on_step=probes)
        timing = self.decoder.last_batch
        assert timing is not None
        self.stats.prompt_tokens += timing.prompt_tokens
        self.stats.prefill_seconds += timing.prefill_seconds
        self.stats.generated_tokens += sum(len(g.tokens) for g in gens)
        self.stats.generate_seconds += timing.decode_seconds
        self.stats.decode_wall_seconds += time.perf_counter() - t
        results = []
        for enc, gen, probe in zip(group, gens, probes, strict=True):
            result, retry = self._assess(enc, gen, temperature, probe.prob, options)
            if retry and not last:
                # attempt k samples with seed + k, as one by one: the retries start at attempt 1
                seed = None if options.seed is None else options.seed + 1
                rest = dataclasses.replace(options, temperatures=options.temperatures[1:], seed=seed)
                result = self._decode(enc, rest, context)
                self.stats.attempts[-1] += 1  # the batched attempt
            else:
                self.stats.attempts.append(1)
            results.append(result)
        return results

    # ------------------------------------------------------------------------------------ stages
    def _start(
        self, audio: np.ndarray, options: TranscribeOptions | None
    ) -> tuple[TranscribeOptions, np.ndarray, list[tuple[int, int]]]:
        """Check the input, resolve the language, cut the chunks and reset the stats of a transcription."""
        options = options or TranscribeOptions()
        if options.word_timestamps and self.aligner is None:
            raise ValueError("word_timestamps=True needs a forced aligner: pass aligner= to the Transcriber")
        if options.language is not None:  # a whisper code or any spelling of a supported name
            options = dataclasses.replace(options, language=language_name(options.language, self.languages))
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size < HOP_LENGTH:
            raise ValueError(f"audio must be 1-D 16 kHz samples, at least 10 ms; got shape {audio.shape}")
        bounds = split_at_quiet_points(
            audio, SAMPLE_RATE, options.chunk_seconds, options.search_seconds, min_tail_seconds=1.0
        )
        self.stats = PipelineStats(audio_seconds=audio.size / SAMPLE_RATE, chunks=len(bounds))
        self._fit_context(options)
        return options, audio, bounds

    def _fit_context(self, options: TranscribeOptions) -> None:
        longest = options.chunk_seconds + options.search_seconds + 1.0
        n_audio = self.model_dir.manifest.encoder.output_length(int(longest * SAMPLE_RATE) // HOP_LENGTH)
        n_context = len(self.decoder.tokenize(options.context)) + 2 * options.previous_text_chars
        self.decoder.ensure_context(n_audio + n_context + options.token_cap(longest) + 64)

    def _encode(self, index: int, audio: np.ndarray, start: int, end: int) -> _Encoded:
        t = time.perf_counter()
        embeds = self.encoder(log_mel_spectrogram(audio[start:end]))
        return _Encoded(index, start, end, embeds, time.perf_counter() - t)

    def _decode(self, enc: _Encoded, options: TranscribeOptions, context: str) -> ChunkResult:
        prompt = asr_prompt(self.tokens, self.decoder.tokenize, len(enc.embeds), context, options.language)
        embeds = self.decoder.token_embeddings(prompt.ids)
        embeds[prompt.audio_offset : prompt.audio_offset + prompt.n_audio] = enc.embeds
        self.stats.prompt_audio_tokens += prompt.n_audio
        self.stats.prompt_text_tokens += len(prompt.ids) - prompt.n_audio
        seconds = (enc.end - enc.start) / SAMPLE_RATE
        cap = options.token_cap(seconds)
        self.decoder.ensure_context(len(prompt.ids) + cap + 1)
        eos = () if options.ignore_eos else self.tokens.eos
        t = time.perf_counter()
        result: ChunkResult | None = None
        for attempt, temperature in enumerate(options.temperatures):
            last = attempt == len(options.temperatures) - 1
            probe = _NoSpeechProbe(options.language is not None, self._header_token, self._none_token, eos)
            sampling = SamplingOptions(
                temperature, options.top_k, options.top_p, None if options.seed is None else options.seed + attempt
            )
            before = self.decoder.perf()
            gen = self.decoder.generate(
                embeds,
                cap,
                eos,
                sampling,
                should_stop=None if last else _LoopGuard(options.loop_window, options.loop_distinct),
                on_step=probe,
            )
            self._count(before, self.decoder.perf())
            result, retry = self._assess(enc, gen, temperature, probe.prob, options)
            if not retry or last:
                self.stats.attempts.append(attempt + 1)
                break
            logger.debug("chunk %d: retrying at temperature %.1f", enc.index, options.temperatures[attempt + 1])
        self.stats.decode_wall_seconds += time.perf_counter() - t
        assert result is not None
        return result

    def _align(self, result: ChunkResult, audio: np.ndarray, a: int, b: int, options: TranscribeOptions) -> ChunkResult:
        """Time the chunk's words; the chunk's start and end snap to its first and last word."""
        assert self.aligner is not None
        if not result.text.strip():
            return dataclasses.replace(result, words=())
        t = time.perf_counter()
        language = result.language or options.language or ""
        if options.align_best_effort:
            problem = self._alignment_problem(language)
            if problem:
                if problem not in self._warned:
                    self._warned.add(problem)
                    logger.warning("%s; those chunks get no word timings", problem)
                return result
        try:
            words = tuple(self.aligner.align(audio[a:b], result.text, language, offset=a / SAMPLE_RATE))
        except MissingExtraError as e:
            if not options.align_best_effort:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                logger.warning("%s; those chunks get no word timings", e)
            return result
        self.stats.align_seconds += time.perf_counter() - t
        if not words:
            return dataclasses.replace(result, words=())
        return dataclasses.replace(result, words=words, start=words[0].start, end=words[-1].end)

    def _alignment_problem(self, language: str) -> str:
        """Why the aligner cannot time text in ``language`` (``""`` when it can)."""
        assert self.aligner is not None
        supported = self.aligner.model_dir.manifest.languages
        if language and supported and language not in supported:
            return f"the forced aligner does not support {language}"
        return ""

    def _count(self, before: dict[str, float], after: dict[str, float]) -> None:
        """Add llama.cpp's own prompt/generation counters of one decode to the stats."""
        delta = {k: after[k] - before[k] for k in after}
        self.stats.prompt_tokens += int(delta["prompt_tokens"])
        self.stats.prefill_seconds += delta["prompt_ms"] / 1000
        self.stats.generated_tokens += int(delta["eval_tokens"])
        self.stats.generate_seconds += delta["eval_ms"] / 1000

    def _assess(
        self, enc: _Encoded, gen: Generation, temperature: float, no_speech: float, options: TranscribeOptions
    ) -> tuple[ChunkResult, bool]:
        """Build the chunk result and say whether the decode should be retried hotter."""
        forced = options.language
        parsed = parse_output(self.decoder.text(gen.tokens, self._special), forced)
        if forced or self.tokens.asr_text not in gen.tokens:
            first = 0
        else:
            first = gen.tokens.index(self.tokens.asr_text) + 1
        text_lps = gen.logprobs[first:] + ([gen.eos_logprob] if gen.eos_logprob is not None else [])
        avg_logprob = float(np.mean(text_lps)) if text_lps else 0.0
        ratio = compression_ratio(parsed.text)
        looping = gen.stop == "aborted" or _LoopGuard(options.loop_window, options.loop_distinct)(gen.tokens)
        too_repetitive = looping or (
            options.compression_ratio_threshold is not None and ratio > options.compression_ratio_threshold
        )
        too_unsure = options.logprob_threshold is not None and avg_logprob < options.logprob_threshold
        result = ChunkResult(
            index=enc.index,
            start=enc.start / SAMPLE_RATE,
            end=enc.end / SAMPLE_RATE,
            text="" if parsed.no_speech else parsed.text,
            tokens=tuple(gen.tokens[first:]),
            language=parsed.language,
            avg_logprob=avg_logprob,
            compression_ratio=ratio,
            no_speech_prob=no_speech,
            temperature=temperature,
            truncated=gen.stop == "max_tokens",
            repetitive=too_repetitive,
            audio_start=enc.start / SAMPLE_RATE,
            audio_end=enc.end / SAMPLE_RATE,
        )
        return result, (too_repetitive or too_unsure) and not parsed.no_speech


class _LoopGuard:
    """True when the last ``window`` tokens hold at most ``distinct`` different ids."""

    def __init__(self, window: int, distinct: int) -> None:
        self.window, self.distinct = window, distinct

    def __call__(self, tokens: list[int]) -> bool:
        return len(tokens) >= self.window and len(set(tokens[-self.window :])) <= self.distinct


class _NoSpeechProbe:
    """Reads the no-speech probability off the decode: P(" None") right after the ``language`` header,
    or, with a forced language, P(end of sequence) as the very first token."""

    def __init__(self, forced: bool, header: int, none: int, eos: tuple[int, ...] | tuple[()]) -> None:
        self.forced, self.header, self.none, self.eos = forced, header, none, eos
        self.prob = 0.0
        self._previous: int | None = None

    def __call__(self, step: int, token: int, logits: np.ndarray, norm: float) -> None:
        if self.forced and step == 0 and self.eos:
            self.prob = float(np.exp(logits[list(self.eos)].astype(np.float64) - norm).sum())
        elif not self.forced and step == 1 and self._previous == self.header:
            self.prob = float(np.exp(float(logits[self.none]) - norm))
        self._previous = token

