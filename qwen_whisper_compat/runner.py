"""The engine behind both whisper-shaped APIs: a loaded model and the chunk -> subtitle-segment shaping.

``transcribe.py`` (openai-whisper dicts) and ``faster.py`` (faster-whisper dataclasses) differ only in the
shape of what they return; both call :meth:`Engine.segments`, which yields :class:`SegmentInfo` objects.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from qwen_whisper_compat.engine.aligner import WordTiming
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.pipeline import DEFAULT_TEMPERATURES, ChunkResult, TranscribeOptions, Transcriber
from qwen_whisper_compat.engine.prompt import LANGUAGE_CODES, language_name
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.postprocess import apply, realign_words
from qwen_whisper_compat.segments import Piece, SegmentLimits, is_wide, split_chunk

if TYPE_CHECKING:
    from qwen_whisper_compat.plugins import PostProcessor

logger = logging.getLogger("qwen_whisper_compat.runner")

#: Audio used to detect the language up front (whisper and faster-whisper look at the first 30 s).
DETECT_SECONDS = 30.0


@dataclass(frozen=True)
class RunOptions:
    """One transcription, in engine terms (the whisper-shaped APIs translate their keywords into this)."""

    #: Language code or name to force; ``None`` detects it per chunk.
    language: str | None = None
    #: Context text for the first chunk's prompt (whisper's ``initial_prompt``, faster-whisper's
    #: ``hotwords``).
    context: str = ""
    #: Repeat ``context`` in every chunk's prompt.
    carry_context: bool = False
    #: Carry the previous chunk's text into the next prompt.
    carry_previous: bool = True
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    #: A chunk whose no-speech probability is above this and whose average log-probability is below
    #: ``logprob_threshold`` is dropped as silence (whisper's rule).
    no_speech_threshold: float | None = 0.6
    #: Put word timings on the segments (needs the aligner).
    word_timestamps: bool = False
    #: Time segments with the aligner when the model has one (else: shorter chunks, estimated times).
    align_segments: bool = True
    limits: SegmentLimits = field(default_factory=SegmentLimits)
    #: Spans of the input to transcribe, seconds; ``None`` end = to the end of the audio.
    clips: tuple[tuple[float, float | None], ...] = ((0.0, None),)
    max_new_tokens: int | None = None
    #: Decode this many chunks together (faster-whisper's batched pipeline); ``None``: one after the
    #: other, each with the previous chunk's text as context.
    batch_size: int | None = None
    #: ``function(text, language) -> text`` applied to each segment's text in turn (words follow; see
    #: :mod:`~.postprocess`); a segment left empty is dropped.
    postprocess: tuple[PostProcessor, ...] = ()


@dataclass(frozen=True)
class SegmentInfo:
    """One subtitle-sized segment, before it is shaped into a whisper dict or a faster-whisper Segment."""

    #: Start of the chunk that produced it, in 10 ms frames (whisper's ``seek``).
    seek: int
    start: float
    end: float
    #: Text with whisper's leading space (none before CJK text).
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    #: Word timings (their texts concatenate to ``text``), or ``None`` when not requested.
    words: tuple[WordTiming, ...] | None
    #: Whisper code of the chunk's language (``""`` when unknown).
    language: str


def rounded_times(
    info: SegmentInfo, to_original: Callable[[float], float] | None = None
) -> tuple[float, float, list[WordTiming] | None]:
    """A segment's start and end (to the millisecond) and its words' times (to 10 ms, as whisper rounds them),
    optionally mapped back to the original audio first; a segment with words spans exactly its words."""
    t = to_original or (lambda seconds: seconds)
    start, end = round(t(info.start), 3), round(t(info.end), 3)
    if info.words is None:
        return start, end, None
    words = [dataclasses.replace(w, start=round(t(w.start), 2), end=round(t(w.end), 2)) for w in info.words]
    if words:
        start, end = words[0].start, words[-1].end
    return start, end, words


def language_code(name: str) -> str:
    """Whisper code of a prompt language name (``""`` for an empty or unknown name)."""
    return LANGUAGE_CODES.get(name, "")


class Engine:
    """A loaded ASR model (and its aligner, if any), shared by every whisper-shaped front end.

    Args:
        asr: The ASR model folder.
        aligner: The forced-aligner model folder, or ``None``.
        device: ``cpu``, ``cuda``, ``dml``, ``coreml`` or ``auto``.
        threads: CPU threads (0 = all).
    """

    def __init__(
        self, asr: str | os.PathLike[str], aligner: str | os.PathLike[str] | None, device: str = "cpu", threads: int = 0
    ) -> None:
        self.device = device
        self.transcriber = Transcriber(
            asr, threads=threads, device=device, n_gpu_layers=0 if device == "cpu" else -1, aligner=aligner
        )

    @property
    def has_aligner(self) -> bool:
        return self.transcriber.aligner is not None

    @property
    def languages(self) -> tuple[str, ...]:
        """Prompt names of the languages the model transcribes."""
        return self.transcriber.languages

    def close(self) -> None:
        self.transcriber.close()

    def language_probs(self, audio: np.ndarray) -> dict[str, float]:
        """Whisper code -> probability of the language spoken in the first 30 s of ``audio``."""
        head = np.asarray(audio[: int(DETECT_SECONDS * SAMPLE_RATE)], dtype=np.float32)
        if head.size < HOP_LENGTH:
            head = np.zeros(SAMPLE_RATE, dtype=np.float32)
        return self.mel_language_probs(log_mel_spectrogram(head))

    def mel_language_probs(self, mel: np.ndarray) -> dict[str, float]:
        """Whisper code -> probability of the language spoken in a log-mel spectrogram."""
        probs = self.transcriber.language_probs(np.asarray(mel, dtype=np.float32))
        return {language_code(name): p for name, p in probs.items()}

    def check_language(self, language: str) -> str:
        """The prompt name of ``language`` (code or name), or a clear error for one the model lacks."""
        try:
            return language_name(language, supported=self.languages)
        except ValueError as e:
            raise UnsupportedOptionError(str(e)) from None

    def segments(
        self, audio: np.ndarray, options: RunOptions, on_progress: Callable[[float], None] | None = None
    ) -> Iterator[SegmentInfo]:
        """Transcribe 16 kHz mono samples into subtitle-sized segments, lazily, in time order.

        Args:
            audio: The samples.
            options: What to do.
            on_progress: Called with the seconds of input done after each chunk.
        """
        if options.word_timestamps and not self.has_aligner:
            raise UnsupportedOptionError(
                "word_timestamps=True needs the forced aligner (Qwen3-ForcedAligner-0.6B): load the model by a "
                "model name (the aligner comes with it), put an aligner model folder in the model folder's "
                "aligner/ subfolder, or pass aligner=<folder> / --aligner_model <folder>"
            )
        language = self.check_language(options.language) if options.language else None
        aligned = options.word_timestamps or (options.align_segments and self.has_aligner)
        chunk_seconds, search = 30.0, 5.0
        if not aligned:  # every chunk is at most one segment long, cut at a quiet point
            chunk_seconds = min(30.0, 0.75 * options.limits.max_seconds)
            search = min(5.0, 0.25 * options.limits.max_seconds)
        engine_options = TranscribeOptions(
            language=language,
            context=options.context,
            carry_initial_context=options.carry_context,
            carry_previous_text=options.carry_previous,
            temperatures=options.temperatures,
            compression_ratio_threshold=options.compression_ratio_threshold,
            logprob_threshold=options.logprob_threshold,
            max_new_tokens=options.max_new_tokens,
            chunk_seconds=chunk_seconds,
            search_seconds=search * 0.999,
            word_timestamps=aligned,
            align_best_effort=not options.word_timestamps,
        )
        total = len(audio) / SAMPLE_RATE
        for clip_start, clip_end in options.clips:
            a = int(round(clip_start * SAMPLE_RATE))
            b = len(audio) if clip_end is None else min(len(audio), int(round(clip_end * SAMPLE_RATE)))
            if b - a < HOP_LENGTH:
                continue
            offset = a / SAMPLE_RATE
            if options.batch_size:
                chunks = self.transcriber.transcribe_batched(audio[a:b], engine_options, options.batch_size)
            else:
                chunks = self.transcriber.transcribe_iter(audio[a:b], engine_options)
            for chunk in chunks:
                yield from self._shape(chunk, offset, options)
                if on_progress is not None:
                    on_progress(min(total, offset + chunk.audio_end))

    def _shape(self, chunk: ChunkResult, offset: float, options: RunOptions) -> Iterator[SegmentInfo]:
        if not chunk.text.strip():
            return
        if (
            options.no_speech_threshold is not None
            and chunk.no_speech_prob > options.no_speech_threshold
            and (options.logprob_threshold is None or chunk.avg_logprob < options.logprob_threshold)
        ):
            logger.debug("chunk %d dropped as silence (no_speech_prob %.2f)", chunk.index, chunk.no_speech_prob)
            return
        if chunk.words:
            pieces = split_chunk(chunk.text, chunk.start, chunk.end, chunk.words, options.limits)
        else:
            pieces = split_chunk(chunk.text, chunk.audio_start, chunk.audio_end, None, options.limits)
        for piece in pieces:
            if piece.text.strip():
                segment = self._segment(chunk, piece, offset, options)
                if segment is not None:
                    yield segment

    def _segment(self, chunk: ChunkResult, piece: Piece, offset: float, options: RunOptions) -> SegmentInfo | None:
        body = piece.text.lstrip()
        lead = "" if is_wide(body[0]) else " "
        text = lead + body
        language = language_code(chunk.language)
        words = None
        if options.word_timestamps and piece.words:
            shifted = [dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in piece.words]
            shifted[0] = dataclasses.replace(shifted[0], word=lead + shifted[0].word.lstrip())  # as the text
            words = tuple(shifted)
        if options.postprocess:
            text = apply(options.postprocess, text, language)
            if not text:
                return None
            if words is not None:
                words = realign_words(words, text)
        return SegmentInfo(
            seek=int(round((chunk.audio_start + offset) * 100)),
            start=piece.start + offset,
            end=piece.end + offset,
            text=text,
            tokens=self.transcriber.tokenize(text),
            temperature=chunk.temperature,
            avg_logprob=chunk.avg_logprob,
            compression_ratio=chunk.compression_ratio,
            no_speech_prob=chunk.no_speech_prob,
            words=words,
            language=language,
        )


def parse_clip_timestamps(
    clips: str | list[float] | list[dict[str, float]] | None,
) -> tuple[tuple[float, float | None], ...]:
    """whisper's ``clip_timestamps`` (``"start,end,start,end,..."`` or a list of seconds, the last end
    optional) or faster-whisper's batched ``[{"start": s, "end": e}, ...]`` as (start, end) spans."""
    if clips is None:
        return ((0.0, None),)
    if isinstance(clips, str):
        try:
            values: list[float] = [float(v) for v in clips.split(",") if v.strip()] if clips.strip() else []
        except ValueError:
            raise UnsupportedOptionError(
                f"clip_timestamps must be 'start,end,start,end,...' in seconds, got {clips!r}"
            ) from None
    elif all(isinstance(c, dict) for c in clips):
        spans = tuple((float(c["start"]), float(c["end"])) for c in clips)  # type: ignore[index]
        return spans or ((0.0, None),)
    else:
        values = [float(v) for v in clips]  # type: ignore[arg-type]
    if not values:
        return ((0.0, None),)
    ends: list[float | None] = [*values[1::2]]
    if len(values) % 2:
        ends.append(None)
    spans2 = tuple(zip(values[::2], ends, strict=True))
    for start, end in spans2:
        if start < 0 or (end is not None and end < start):
            raise UnsupportedOptionError(f"clip_timestamps span ({start}, {end}) is not a valid start,end pair")
    return spans2
