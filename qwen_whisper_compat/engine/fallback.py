"""Judging one decode: is it repetitive or unsure (retry it hotter), did the model say there is no speech.

A decode that loops (few distinct tokens at the end) is stopped early by :class:`LoopGuard` and, like one
whose text compresses too well (gzip ratio above 2.4, whisper's test) or whose average log-probability is
below the threshold, retried at the next temperature by the pipeline; the last temperature's result is
kept whatever it is. :class:`NoSpeechProbe` reads whisper's ``no_speech_prob`` off the decode's first steps.
"""

from __future__ import annotations

import zlib

import numpy as np

from qwen_whisper_compat.engine.generation import Generation
from qwen_whisper_compat.engine.mel import SAMPLE_RATE
from qwen_whisper_compat.engine.prompt import parse_output
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, TranscribeOptions


def compression_ratio(text: str) -> float:
    """whisper's gzip compression ratio of a text (0 for empty text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class LoopGuard:
    """True when the last ``window`` tokens hold at most ``distinct`` different ids."""

    def __init__(self, window: int, distinct: int) -> None:
        self.window, self.distinct = window, distinct

    def __call__(self, tokens: list[int]) -> bool:
        return len(tokens) >= self.window and len(set(tokens[-self.window :])) <= self.distinct


class NoSpeechProbe:
    """Reads the no-speech probability off the decode: P(" None") right after the ``language`` header,
    or, with a forced language, P(end of sequence) as the very first token.

    Args:
        forced: The prompt forces the language.
        header: Id of the ``language`` token that starts the model's own language header.
        none: Id of the `` None`` token (the header of a chunk without speech).
        eos: Ids that end the decode (empty when end-of-sequence is ignored).
    """

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


def assess(
    chunk: EncodedChunk,
    gen: Generation,
    raw_text: str,
    asr_text_token: int,
    temperature: float,
    no_speech: float,
    options: TranscribeOptions,
) -> tuple[ChunkResult, bool]:
    """The chunk result of one decode, and whether the decode should be retried at the next temperature.

    Args:
        chunk: The chunk decoded.
        gen: The decode.
        raw_text: The decoded text of ``gen.tokens`` (special tokens dropped).
        asr_text_token: Id of ``<asr_text>``, which ends the model's language header.
        temperature: The decode's temperature.
        no_speech: The no-speech probability read off the decode.
        options: The thresholds.
    """
    forced = options.language
    parsed = parse_output(raw_text, forced)
    first = 0 if forced or asr_text_token not in gen.tokens else gen.tokens.index(asr_text_token) + 1
    text_lps = gen.logprobs[first:] + ([gen.eos_logprob] if gen.eos_logprob is not None else [])
    avg_logprob = float(np.mean(text_lps)) if text_lps else 0.0
    ratio = compression_ratio(parsed.text)
    looping = gen.stop == "aborted" or LoopGuard(options.loop_window, options.loop_distinct)(gen.tokens)
    too_repetitive = looping or (
        options.compression_ratio_threshold is not None and ratio > options.compression_ratio_threshold
    )
    too_unsure = options.logprob_threshold is not None and avg_logprob < options.logprob_threshold
    result = ChunkResult(
        index=chunk.index,
        start=chunk.start / SAMPLE_RATE,
        end=chunk.end / SAMPLE_RATE,
        text="" if parsed.no_speech else parsed.text,
        tokens=tuple(gen.tokens[first:]),
        language=parsed.language,
        avg_logprob=avg_logprob,
        compression_ratio=ratio,
        no_speech_prob=no_speech,
        temperature=temperature,
        truncated=gen.stop == "max_tokens",
        repetitive=too_repetitive,
        audio_start=chunk.start / SAMPLE_RATE,
        audio_end=chunk.end / SAMPLE_RATE,
    )
    return result, (too_repetitive or too_unsure) and not parsed.no_speech
