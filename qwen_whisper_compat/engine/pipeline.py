"""Audio samples in, transcribed chunks out: chunking, prompting, decoding with fallback, and overlap.

For each chunk (cut at a quiet point, see chunking.py): log-mel -> ONNX encoder -> prompt embeddings ->
GGUF decode (-> forced alignment). With ``overlap``, chunk i+1 is encoded and chunk i-1 aligned on worker
threads while chunk i decodes (the native runtimes release the GIL); by default only when the encoder runs
on an accelerator. The previous chunk's text is carried into the next prompt's context; its audio is not
re-encoded or re-prefilled.

Every decode is judged by :mod:`.fallback` (loops, compression ratio, log-probability) and retried at the
next temperature when it fails; every decode is capped by a token budget derived from the chunk length,
and a chunk that hit the cap says so (``truncated``) instead of being silently cut. The option, result and
statistics types are :mod:`.types`.

This module knows nothing about whisper result shapes: it yields :class:`~.types.ChunkResult` objects.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from qwen_whisper_compat.engine.aligner import ForcedAligner
from qwen_whisper_compat.engine.chunking import split_at_quiet_points
from qwen_whisper_compat.engine.decoder import GGUFDecoder
from qwen_whisper_compat.engine.encoder import load_encoder, select_providers
from qwen_whisper_compat.engine.fallback import LoopGuard, NoSpeechProbe, assess
from qwen_whisper_compat.engine.generation import Generation
from qwen_whisper_compat.engine.languages import language_name
from qwen_whisper_compat.engine.manifest import SpecialTokens
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.modeldir import ModelDir, load_model_dir
from qwen_whisper_compat.engine.prompt import asr_prompt
from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, PipelineStats, TranscribeOptions
from qwen_whisper_compat.errors import MissingDependencyError, ModelFolderError, UnsupportedOptionError

logger = logging.getLogger("qwen_whisper_compat.pipeline")

#: One decoding attempt of a chunk: (attempt index, token cap, end-of-sequence ids, sampling, loop guard or
#: None, no-speech probe) -> the decode.
Attempt = Callable[[int, int, tuple[int, ...], SamplingOptions, "LoopGuard | None", NoSpeechProbe], Generation]


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
            pending: Future[EncodedChunk] | None = None
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
                    done, aligned = aligned, aligning.submit(self._align, result, audio[a:b], a, options)
                    if done is None:
                        continue
                    result = done.result()
                elif options.word_timestamps:
                    result = self._align(result, audio[a:b], a, options)
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
        prompt = asr_prompt(self.tokens, self.decoder.tokenize, len(embeds)).extended([self._header_token])
        rows = prompt.embed(self.decoder.token_embeddings, embeds)
        n = len(prompt.ids)
        self.decoder.ensure_context(n + 1)
        self.decoder.reset()
        self.decoder.eval_embeddings(rows, 0, [n - 1])
        logits = self.decoder.logits(n - 1).astype(np.float64)
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
        return self._decode(EncodedChunk(0, 0, n_samples, embeds, 0.0), options, options.context)

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
                    result = self._align(result, audio[enc.start : enc.end], enc.start, options)
                stats.wall_seconds = time.perf_counter() - t0
                yield result

    def _decode_group(self, group: list[EncodedChunk], options: TranscribeOptions) -> list[ChunkResult]:
        """Decode encoded chunks together at the first temperature; retry the failures one by one."""
        context = options.context
        prompts = [self._prompt_embeddings(enc, context, options.language) for enc in group]
        caps = [options.token_cap((enc.end - enc.start) / SAMPLE_RATE) for enc in group]
        eos = () if options.ignore_eos else self.tokens.eos
        temperature = options.temperatures[0]
        sampling = SamplingOptions(temperature, options.top_k, options.top_p, options.seed)
        last = len(options.temperatures) == 1
        guard = None if last else LoopGuard(options.loop_window, options.loop_distinct)
        forced = options.language is not None
        probes = [NoSpeechProbe(forced, self._header_token, self._none_token, eos) for _ in group]
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
        options = self.resolve_options(options)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size < HOP_LENGTH:
            raise ValueError(f"audio must be 1-D 16 kHz samples, at least 10 ms; got shape {audio.shape}")
        bounds = split_at_quiet_points(
            audio, SAMPLE_RATE, options.chunk_seconds, options.search_seconds, min_tail_seconds=1.0
        )
        self.stats = PipelineStats(audio_seconds=audio.size / SAMPLE_RATE, chunks=len(bounds))
        self._fit_context(options)
        return options, audio, bounds

    def resolve_options(self, options: TranscribeOptions | None) -> TranscribeOptions:
        """The options of a transcription checked against this model: the language as its prompt name (from a
        whisper code or any spelling of a supported name); word timestamps only with an aligner."""
        options = options or TranscribeOptions()
        if options.word_timestamps and self.aligner is None:
            raise UnsupportedOptionError("word_timestamps=True needs a forced aligner: pass aligner= to the Transcriber")
        if options.language is not None:
            options = dataclasses.replace(options, language=language_name(options.language, self.languages))
        return options

    def _fit_context(self, options: TranscribeOptions) -> None:
        longest = options.chunk_seconds + options.search_seconds + 1.0
        n_audio = self.model_dir.manifest.encoder.output_length(int(longest * SAMPLE_RATE) // HOP_LENGTH)
        n_context = len(self.decoder.tokenize(options.context)) + 2 * options.previous_text_chars
        self.decoder.ensure_context(n_audio + n_context + options.token_cap(longest) + 64)

    def _encode(self, index: int, audio: np.ndarray, start: int, end: int) -> EncodedChunk:
        t = time.perf_counter()
        embeds = self.encoder(log_mel_spectrogram(audio[start:end]))
        return EncodedChunk(index, start, end, embeds, time.perf_counter() - t)

    def _prompt_embeddings(self, enc: EncodedChunk, context: str, language: str | None) -> np.ndarray:
        """The prompt of one chunk as embeddings (token rows with the chunk's audio rows), counted in the stats."""
        prompt = asr_prompt(self.tokens, self.decoder.tokenize, len(enc.embeds), context, language)
        self.stats.prompt_audio_tokens += prompt.n_audio
        self.stats.prompt_text_tokens += len(prompt.ids) - prompt.n_audio
        return prompt.embed(self.decoder.token_embeddings, enc.embeds)

    def _decode(
        self, enc: EncodedChunk, options: TranscribeOptions, context: str, run: Attempt | None = None
    ) -> ChunkResult:
        """Decode one encoded chunk with the fallback of temperatures.

        ``run`` performs one attempt (the live session's decode on a kept KV prefix); by default each
        attempt is :meth:`GGUFDecoder.generate` over the chunk's whole prompt (a retry reuses its cache).
        """
        seconds = (enc.end - enc.start) / SAMPLE_RATE
        cap = options.token_cap(seconds)
        eos: tuple[int, ...] = () if options.ignore_eos else tuple(self.tokens.eos)
        if run is None:
            embeds = self._prompt_embeddings(enc, context, options.language)
            self.decoder.ensure_context(embeds.shape[0] + cap + 1)

            def run(
                attempt: int, cap: int, eos: tuple[int, ...], sampling: SamplingOptions,
                stop: LoopGuard | None, probe: NoSpeechProbe,
            ) -> Generation:  # fmt: skip
                return self.decoder.generate(embeds, cap, eos, sampling, should_stop=stop, on_step=probe)

        t = time.perf_counter()
        result: ChunkResult | None = None
        for attempt, temperature in enumerate(options.temperatures):
            last = attempt == len(options.temperatures) - 1
            probe = NoSpeechProbe(options.language is not None, self._header_token, self._none_token, eos)
            sampling = SamplingOptions(
                temperature, options.top_k, options.top_p, None if options.seed is None else options.seed + attempt
            )
            before = self.decoder.perf()
            stop = None if last else LoopGuard(options.loop_window, options.loop_distinct)
            gen = run(attempt, cap, eos, sampling, stop, probe)
            self._count(before, self.decoder.perf())
            result, retry = self._assess(enc, gen, temperature, probe.prob, options)
            if not retry or last:
                self.stats.attempts.append(attempt + 1)
                break
            logger.debug("chunk %d: retrying at temperature %.1f", enc.index, options.temperatures[attempt + 1])
        self.stats.decode_wall_seconds += time.perf_counter() - t
        assert result is not None
        return result

    def _align(self, result: ChunkResult, samples: np.ndarray, first: int, options: TranscribeOptions) -> ChunkResult:
        """Time the words of the chunk whose audio is ``samples``, starting at sample ``first`` of the input;
        the chunk's start and end snap to its first and last word."""
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
            words = tuple(self.aligner.align(samples, result.text, language, offset=first / SAMPLE_RATE))
        except MissingDependencyError as e:
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
        self, enc: EncodedChunk, gen: Generation, temperature: float, no_speech: float, options: TranscribeOptions
    ) -> tuple[ChunkResult, bool]:
        """Build the chunk result and say whether the decode should be retried hotter."""
        raw = self.decoder.text(gen.tokens, self._special)
        return assess(enc, gen, raw, self.tokens.asr_text, temperature, no_speech, options)
