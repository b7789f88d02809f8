"""Decoding one encoded span of audio: its prompt, the fallback of temperatures, and the chunk result.

:class:`SpanDecoder` is the one place where an encoded span becomes a :class:`~.types.ChunkResult`: the
offline pipeline decodes each chunk with it (one turn of the decoder per chunk, in a free KV sequence), and a
live session decodes its finals with it (in the session's leased sequence, keeping the prompt's prefix and the
completed encoder windows the sequence already holds, with the last partial as a draft). So a live final is
decoded exactly as the offline pipeline decodes that span. Statistics go into the caller's own
:class:`~.types.PipelineStats`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qwen_whisper_compat.engine.decoder import GGUFDecoder, Part
from qwen_whisper_compat.engine.fallback import LoopGuard, NoSpeechProbe, assess
from qwen_whisper_compat.engine.generation import Generation
from qwen_whisper_compat.engine.manifest import SpecialTokens
from qwen_whisper_compat.engine.mel import SAMPLE_RATE
from qwen_whisper_compat.engine.prompt import Prompt, asr_prompt
from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.engine.turns import OFFLINE
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, PipelineStats, TranscribeOptions

logger = logging.getLogger("qwen_whisper_compat.pipeline")


@dataclass(frozen=True)
class SpanCache:
    """Where a span is decoded when its KV cache is kept between calls: a leased KV sequence, and the
    completed encoder windows at the start of the span's audio rows (each named by a version that changes
    whenever its rows do, see :class:`~.decoder.Part`)."""

    seq: int
    windows: tuple[Part, ...] = ()


@dataclass(frozen=True)
class SpanGeneration:
    """One decode of a span on a kept KV prefix."""

    generation: Generation
    #: Prompt rows evaluated, and rows found in the sequence's cache instead.
    prompt_rows: int
    kept_rows: int
    #: Decoding steps llama.cpp ran (the other generated tokens were accepted from the draft).
    steps: int


class SpanDecoder:
    """Decodes encoded spans with one model's decoder.

    Args:
        decoder: The model's decoder (shared: every decode takes its turn).
        tokens: The model's special tokens.
    """

    def __init__(self, decoder: GGUFDecoder, tokens: SpecialTokens) -> None:
        self.decoder, self.tokens = decoder, tokens
        self._special = frozenset(tokens.special)
        self._header = decoder.tokenize("language")[0]
        self._none = decoder.tokenize(" None")[0]

    def text(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens dropped."""
        return self.decoder.text(tokens, self._special)

    def probe(self, options: TranscribeOptions, eos: tuple[int, ...]) -> NoSpeechProbe:
        """A fresh no-speech probe for one decode."""
        return NoSpeechProbe(options.language is not None, self._header, self._none, eos)

    def eos(self, options: TranscribeOptions) -> tuple[int, ...]:
        """The ids that end a decode under ``options``."""
        return () if options.ignore_eos else tuple(self.tokens.eos)

    # ---------------------------------------------------------------------------------------- prompts
    def prompt(
        self, embeds: np.ndarray, context: str, language: str | None, stats: PipelineStats | None = None
    ) -> tuple[np.ndarray, Part, int]:
        """The prompt rows of a span whose audio rows are ``embeds``: the rows, the part before the audio rows
        (it depends only on the context), and the row where the audio rows end."""
        prompt = self._ids(len(embeds), context, language, stats)
        rows = prompt.embed(self.decoder.token_embeddings, embeds)
        return rows, Part(("asr-prompt", context), prompt.audio_offset), prompt.audio_offset + prompt.n_audio

    def _ids(self, n_audio: int, context: str, language: str | None, stats: PipelineStats | None) -> Prompt:
        prompt = asr_prompt(self.tokens, self.decoder.tokenize, n_audio, context, language)
        if stats is not None:
            stats.prompt_audio_tokens += prompt.n_audio
            stats.prompt_text_tokens += len(prompt.ids) - prompt.n_audio
        return prompt

    def generate(
        self, embeds: np.ndarray, context: str, language: str | None, cache: SpanCache, *, cap: int,
        eos: tuple[int, ...], sampling: SamplingOptions | None = None, stop: LoopGuard | None = None,
        probe: NoSpeechProbe | None = None, draft: Sequence[int] = (), forced: int = 0, priority: int = OFFLINE,
    ) -> SpanGeneration:  # fmt: skip
        """Decode the span in ``cache.seq``, keeping what of the prompt's prefix and the completed windows the
        sequence still holds; ``draft``/``forced`` as for :meth:`GGUFDecoder.generate_after`."""
        rows, prefix, _ = self.prompt(embeds, context, language)
        with self.decoder.turns.turn(priority):
            before = self.decoder.perf()["eval_tokens"]
            gen, kept = self.decoder.generate_cached(
                cache.seq, [prefix, *cache.windows], rows, cap, eos, sampling=sampling, should_stop=stop,
                on_step=probe, draft=draft, forced=forced,
            )  # fmt: skip
            steps = int(self.decoder.perf()["eval_tokens"] - before)
        return SpanGeneration(gen, rows.shape[0] - kept, kept, steps)

    def prefill(self, embeds: np.ndarray, context: str, cache: SpanCache, priority: int = OFFLINE) -> int:
        """Make ``cache.seq`` hold the prompt's prefix and the completed windows ``cache.windows`` (whose rows
        start ``embeds``), evaluating only what it does not hold yet; returns the rows evaluated."""
        rows, prefix, _ = self.prompt(embeds, context, None)
        end = prefix.rows + sum(w.rows for w in cache.windows)
        with self.decoder.turns.turn(priority):
            return self.decoder.prefill(cache.seq, [prefix, *cache.windows], rows[:end])

    # --------------------------------------------------------------------------------------- decoding
    def decode(
        self, enc: EncodedChunk, options: TranscribeOptions, context: str, stats: PipelineStats, *,
        cache: SpanCache | None = None, draft: Sequence[int] = (), priority: int = OFFLINE,
        on_run: Callable[[int, SpanGeneration], None] | None = None,
    ) -> ChunkResult:  # fmt: skip
        """Decode one encoded span with the fallback of temperatures, in one turn of the decoder.

        Without ``cache`` each attempt decodes the whole prompt in a free sequence (a retry reuses its cache);
        with it, the first attempt decodes in the leased sequence on what it holds, with ``draft`` (the last
        partial) verified where it is right, and a retry keeps the same prefix without the draft; ``on_run``
        is called with each such attempt's index and decode.
        """
        seconds = (enc.end - enc.start) / SAMPLE_RATE
        cap = options.token_cap(seconds)
        eos = self.eos(options)
        t = time.perf_counter()
        with self.decoder.turns.turn(priority):
            embeds = None
            if cache is None:
                embeds, _, _ = self.prompt(enc.embeds, context, options.language, stats)
                self.decoder.ensure_context(embeds.shape[0] + cap + 1)
            else:
                self._ids(len(enc.embeds), context, options.language, stats)
            result: ChunkResult | None = None
            for attempt, temperature in enumerate(options.temperatures):
                last = attempt == len(options.temperatures) - 1
                probe = self.probe(options, eos)
                seed = None if options.seed is None else options.seed + attempt
                sampling = SamplingOptions(temperature, options.top_k, options.top_p, seed)
                stop = None if last else LoopGuard(options.loop_window, options.loop_distinct)
                before = self.decoder.perf()
                if embeds is not None:
                    gen = self.decoder.generate(embeds, cap, eos, sampling, should_stop=stop, on_step=probe)
                else:
                    assert cache is not None
                    run = self.generate(
                        enc.embeds, context, options.language, cache, cap=cap, eos=eos, sampling=sampling, stop=stop,
                        probe=probe, draft=draft if attempt == 0 else (), priority=priority,
                    )  # fmt: skip
                    if on_run is not None:
                        on_run(attempt, run)
                    gen = run.generation
                count(stats, before, self.decoder.perf())
                result, retry = assess(enc, gen, self.text(gen.tokens), self.tokens.asr_text, temperature,
                                       probe.prob, options)  # fmt: skip
                if not retry or last:
                    stats.attempts.append(attempt + 1)
                    break
                logger.debug("chunk %d: retrying at temperature %.1f", enc.index, options.temperatures[attempt + 1])
        stats.decode_wall_seconds += time.perf_counter() - t
        assert result is not None
        return result

    def decode_group(self, group: list[EncodedChunk], options: TranscribeOptions, stats: PipelineStats) -> list[ChunkResult]:
        """Decode encoded chunks together at the first temperature (one turn); retry the failures one by one."""
        context = options.context
        prompts = [self.prompt(enc.embeds, context, options.language, stats)[0] for enc in group]
        caps = [options.token_cap((enc.end - enc.start) / SAMPLE_RATE) for enc in group]
        eos = self.eos(options)
        temperature = options.temperatures[0]
        sampling = SamplingOptions(temperature, options.top_k, options.top_p, options.seed)
        last = len(options.temperatures) == 1
        guard = None if last else LoopGuard(options.loop_window, options.loop_distinct)
        probes = [self.probe(options, eos) for _ in group]
        t = time.perf_counter()
        gens, timing = self.decoder.generate_batch(prompts, caps, eos, sampling, should_stop=guard, on_step=probes)
        stats.prompt_tokens += timing.prompt_tokens
        stats.prefill_seconds += timing.prefill_seconds
        stats.generated_tokens += sum(len(g.tokens) for g in gens)
        stats.generate_seconds += timing.decode_seconds
        stats.decode_wall_seconds += time.perf_counter() - t
        results = []
        for enc, gen, probe in zip(group, gens, probes, strict=True):
            result, retry = assess(enc, gen, self.text(gen.tokens), self.tokens.asr_text, temperature, probe.prob,
                                   options)  # fmt: skip
            if retry and not last:
                # attempt k samples with seed + k, as one by one: the retries start at attempt 1
                seed = None if options.seed is None else options.seed + 1
                rest = dataclasses.replace(options, temperatures=options.temperatures[1:], seed=seed)
                result = self.decode(enc, rest, context, stats)
                stats.attempts[-1] += 1  # the batched attempt
            else:
                stats.attempts.append(1)
            results.append(result)
        return results


def count(stats: PipelineStats, before: dict[str, float], after: dict[str, float]) -> None:
    """Add llama.cpp's own prompt/generation counters of one decode (taken in one turn) to ``stats``."""
    delta = {k: after[k] - before[k] for k in after}
    stats.prompt_tokens += int(delta["prompt_tokens"])
    stats.prefill_seconds += delta["prompt_ms"] / 1000
    stats.generated_tokens += int(delta["eval_tokens"])
    stats.generate_seconds += delta["eval_ms"] / 1000
