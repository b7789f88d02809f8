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
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from qwen_whisper_compat.engine.aligner import ForcedAligner
from qwen_whisper_compat.engine.chunking import split_at_quiet_points
from qwen_whisper_compat.engine.decoder import GGUFDecoder
from qwen_whisper_compat.engine.encoder import load_encoder, select_providers
from qwen_whisper_compat.engine.languages import language_name
from qwen_whisper_compat.engine.manifest import SpecialTokens
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.modeldir import ModelDir, load_model_dir
from qwen_whisper_compat.engine.prompt import asr_prompt
from qwen_whisper_compat.engine.spans import SpanDecoder
from qwen_whisper_compat.engine.turns import OFFLINE
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, PipelineStats, TranscribeOptions
from qwen_whisper_compat.errors import MissingDependencyError, ModelFolderError, UnsupportedOptionError

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger("qwen_whisper_compat.pipeline")

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

    One Transcriber may be used from several threads at once: the encoder session is thread-safe, and every
    call that uses the decoder (or the aligner's) takes turns on it (see :mod:`.turns`), one chunk at a
    time, live streams' steps first. Each call fills its own :class:`~.types.PipelineStats` (``stats=``).

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
        #: Decodes one encoded span (a chunk, a live final) with the fallback of temperatures.
        self.spans = SpanDecoder(self.decoder, self.tokens)
        self._warned: set[str] = set()
        if aligner is None or isinstance(aligner, ForcedAligner):
            self.aligner = aligner
        else:
            self.aligner = ForcedAligner(aligner, threads=threads, device=device, exact=exact)

    def close(self) -> None:
        """Free the decoders' native memory (waits for a call in progress)."""
        self.decoder.close()
        if self.aligner is not None:
            self.aligner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- public
    def transcribe(
        self, audio: np.ndarray, options: TranscribeOptions | None = None, stats: PipelineStats | None = None
    ) -> list[ChunkResult]:
        """Transcribe 16 kHz mono float32 samples; all chunks at once."""
        return list(self.transcribe_iter(audio, options, stats))

    def transcribe_iter(
        self, audio: np.ndarray, options: TranscribeOptions | None = None, stats: PipelineStats | None = None
    ) -> Iterator[ChunkResult]:
        """Transcribe 16 kHz mono float32 samples, yielding each chunk as soon as it is decoded.

        Args:
            audio: The samples.
            options: What to do (defaults: :class:`~.types.TranscribeOptions`).
            stats: Filled with where the time went (counts from zero for this call).
        """
        stats = stats if stats is not None else PipelineStats()
        options, audio, bounds = self._start(audio, options, stats)
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
                result = self.spans.decode(encoded, options, chunk_context(options, i, previous), stats)
                previous = result.text
                if aligning is not None:
                    done, aligned = aligned, aligning.submit(self.align, result, audio[a:b], a, options, stats)
                    if done is None:
                        continue
                    result = done.result()
                elif options.word_timestamps:
                    result = self.align(result, audio[a:b], a, options, stats)
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
        return self.spans.text(ids)

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
        logits = self.decoder.prompt_logits(rows).astype(np.float64)
        names = self.languages
        firsts = np.array([self.decoder.tokenize(" " + name)[0] for name in names])
        scores = logits[firsts]
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        return {name: float(p) for name, p in zip(names, probs, strict=True)}

    def decode_features(
        self, mel: np.ndarray, options: TranscribeOptions | None = None, stats: PipelineStats | None = None
    ) -> ChunkResult:
        """Decode one log-mel spectrogram as a single chunk (no chunking, no context carry-over)."""
        options = options or TranscribeOptions()
        if options.language is not None:
            options = dataclasses.replace(options, language=language_name(options.language, self.languages))
        mel = np.asarray(mel, dtype=np.float32)
        embeds = self.encoder(mel)
        n_samples = mel.shape[-1] * HOP_LENGTH
        enc = EncodedChunk(0, 0, n_samples, embeds, 0.0)
        return self.spans.decode(enc, options, options.context, stats if stats is not None else PipelineStats())

    def transcribe_batched(
        self, audio: np.ndarray, options: TranscribeOptions | None = None, batch_size: int = 8,
        stats: PipelineStats | None = None,
    ) -> Iterator[ChunkResult]:  # fmt: skip
        """Transcribe with ``batch_size`` chunks decoded together (see :meth:`GGUFDecoder.generate_batch`).

        Chunks are independent here: no previous text is carried (the context text still is), and the
        first temperature decodes every chunk; a chunk that fails the repetition checks is decoded again
        on its own with the remaining temperatures. Results come in input order.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        stats = stats if stats is not None else PipelineStats()
        options, audio, bounds = self._start(audio, options, stats)
        t0 = time.perf_counter()
        for first in range(0, len(bounds), batch_size):
            group = [self._encode(i, audio, a, b) for i, (a, b) in enumerate(bounds[first : first + batch_size], first)]
            stats.encode_seconds += sum(e.seconds for e in group)
            for enc, result in zip(group, self.spans.decode_group(group, options, stats), strict=True):
                if options.word_timestamps:
                    result = self.align(result, audio[enc.start : enc.end], enc.start, options, stats)
                stats.wall_seconds = time.perf_counter() - t0
                yield result

    # ------------------------------------------------------------------------------------ stages
    def _start(
        self, audio: np.ndarray, options: TranscribeOptions | None, stats: PipelineStats
    ) -> tuple[TranscribeOptions, np.ndarray, list[tuple[int, int]]]:
        """Check the input, resolve the language, cut the chunks and start the stats of a transcription."""
        options = self.resolve_options(options)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size < HOP_LENGTH:
            raise ValueError(f"audio must be 1-D 16 kHz samples, at least 10 ms; got shape {audio.shape}")
        bounds = split_at_quiet_points(
            audio, SAMPLE_RATE, options.chunk_seconds, options.search_seconds, min_tail_seconds=1.0
        )
        stats.audio_seconds, stats.chunks = audio.size / SAMPLE_RATE, len(bounds)
        self.fit_context(options)
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

    def fit_context(self, options: TranscribeOptions, longest_seconds: float | None = None) -> None:
        """Size the decoder's context for spans of at most ``longest_seconds`` (default: the longest chunk of
        ``options``) with the options' context text and token cap. Growing it empties every KV cache."""
        longest = longest_seconds or options.chunk_seconds + options.search_seconds + 1.0
        n_audio = self.model_dir.manifest.encoder.output_length(int(longest * SAMPLE_RATE) // HOP_LENGTH)
        n_context = len(self.decoder.tokenize(options.context)) + 2 * options.previous_text_chars
        self.decoder.ensure_context(n_audio + n_context + options.token_cap(longest) + 64)

    def _encode(self, index: int, audio: np.ndarray, start: int, end: int) -> EncodedChunk:
        t = time.perf_counter()
        embeds = self.encoder(log_mel_spectrogram(audio[start:end]))
        return EncodedChunk(index, start, end, embeds, time.perf_counter() - t)

    def align(
        self, result: ChunkResult, samples: np.ndarray, first: int, options: TranscribeOptions, stats: PipelineStats,
        priority: int = OFFLINE,
    ) -> ChunkResult:  # fmt: skip
        """Time the words of the chunk whose audio is ``samples``, starting at sample ``first`` of the input;
        the chunk's start and end snap to its first and last word."""
        if self.aligner is None:
            raise UnsupportedOptionError("word timestamps need a forced aligner: pass aligner= to the Transcriber")
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
            words = tuple(self.aligner.align(samples, result.text, language, offset=first / SAMPLE_RATE,
                                             priority=priority))  # fmt: skip
        except MissingDependencyError as e:
            if not options.align_best_effort:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                logger.warning("%s; those chunks get no word timings", e)
            return result
        stats.align_seconds += time.perf_counter() - t
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
