"""The one seam between the whisper-shaped faces and the engine: a loaded model that turns audio into
subtitle-sized segments.

``transcribe.py`` (openai-whisper dicts), ``faster.py`` (faster-whisper dataclasses), ``decoding.py``,
``model.py``, the CLI and the host adapters differ only in the shape of what they return; all of them reach
the engine through a :class:`Recognizer` (a model object's ``.recognizer``), which offers what they need:
the model's dimensions, device and languages (whisper codes), detokenizing, decoding one spectrogram,
language probabilities, and :meth:`Recognizer.segments`, which yields :class:`SegmentInfo` objects. No
module outside ``engine/`` and this one touches the engine's transcriber, decoder, encoder or model folder
(``tests/test_boundaries.py`` checks it).

The name follows speech toolkits (sherpa-onnx's ``OfflineRecognizer``): the thing that recognizes speech;
"engine" names only the ``engine`` package.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from qwen_whisper_compat.engine.languages import language_name
from qwen_whisper_compat.engine.live import LiveOptions
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.pipeline import Transcriber
from qwen_whisper_compat.engine.types import DEFAULT_TEMPERATURES, TranscribeOptions, WordTiming
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.live import StreamSlots
from qwen_whisper_compat.segments import SegmentLimits
from qwen_whisper_compat.shaping import SegmentInfo, SegmentShaper, language_code

if TYPE_CHECKING:
    from qwen_whisper_compat.live import LiveStream
    from qwen_whisper_compat.plugins import PostProcessor

logger = logging.getLogger("qwen_whisper_compat.recognizer")

__all__ = ["DEFAULT_TEMPERATURES", "DETECT_SECONDS", "Decoded", "LiveOptions", "ModelDimensions", "Recognizer",
           "RunOptions", "SegmentInfo", "WordTiming", "language_code"]  # fmt: skip

#: Audio used to detect the language up front (whisper and faster-whisper look at the first 30 s).
DETECT_SECONDS = 30.0


@dataclass(frozen=True)
class RunOptions:
    """One transcription, in the recognizer's terms (the whisper-shaped APIs translate their keywords into this)."""

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
    #: The speaker of a span of the input (seconds; a :class:`~.speakers.SpeakerMap` of its diarized turns):
    #: segments are then cut where the speaker changes and carry speaker labels; ``None``: no labels.
    speakers: Callable[[float, float], str | None] | None = None


@dataclass
class ModelDimensions:
    """whisper's ``ModelDimensions``, filled from the Qwen3-ASR model folder.

    ``n_mels`` is what clients read (128); the audio fields describe the AuT encoder, the text fields the
    Qwen3 decoder (``n_text_ctx`` is the decoder context this engine allocates per chunk).
    """

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


@dataclass(frozen=True)
class Decoded:
    """One spectrogram decoded as a single chunk (whisper's ``decode``)."""

    #: Whisper code of the language detected or forced (``""`` when the model gave none).
    language: str
    tokens: list[int]
    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    compression_ratio: float


class Recognizer:
    """A loaded ASR model (and its aligner, if any), shared by every whisper-shaped face.

    Args:
        asr: The ASR model folder.
        aligner: The forced-aligner model folder, or ``None``.
        device: ``cpu``, ``cuda``, ``dml``, ``coreml`` or ``auto``.
        threads: CPU threads (0 = all).
    """

    def __init__(
        self, asr: str | os.PathLike[str], aligner: str | os.PathLike[str] | None, device: str = "cpu", threads: int = 0
    ) -> None:
        self.transcriber = Transcriber(
            asr, threads=threads, device=device, n_gpu_layers=0 if device == "cpu" else -1, aligner=aligner
        )
        self._shaper = SegmentShaper(self.transcriber.tokenize)
        #: The live streams open on this model, and how many may be.
        self.streams = StreamSlots()

    # ------------------------------------------------------------------------------------ the model
    @property
    def has_aligner(self) -> bool:
        """Whether word timestamps (and aligner-timed segments) are available."""
        return self.transcriber.aligner is not None

    @property
    def languages(self) -> tuple[str, ...]:
        """Whisper codes of the languages the model transcribes."""
        return tuple(language_code(name) for name in self.transcriber.languages)

    @property
    def device(self) -> str:
        """``"cuda"`` when the audio encoder runs on CUDA, else ``"cpu"``."""
        providers = self.transcriber.encoder.providers
        return "cuda" if providers and providers[0] == "CUDAExecutionProvider" else "cpu"

    @property
    def model_path(self) -> str:
        """The ASR model folder."""
        return str(self.transcriber.model_dir.path)

    def dimensions(self) -> ModelDimensions:
        """whisper's dimensions of this model."""
        manifest = self.transcriber.model_dir.manifest
        return ModelDimensions(
            n_mels=manifest.encoder.n_mels,
            n_audio_ctx=manifest.encoder.output_length(30 * 100),
            n_audio_state=manifest.encoder.d_model,
            n_audio_head=manifest.encoder.heads,
            n_audio_layer=manifest.encoder.layers,
            n_vocab=manifest.decoder.vocab_size,
            n_text_ctx=self.transcriber.decoder.n_ctx,
            n_text_state=manifest.decoder.hidden,
            n_text_head=manifest.decoder.heads,
            n_text_layer=manifest.decoder.layers,
        )

    def close(self) -> None:
        """Free the native memory now instead of at garbage collection."""
        self.transcriber.close()

    # ---------------------------------------------------------------------------------- languages
    def check_language(self, language: str) -> None:
        """A clear error for a language (code or name) the model does not transcribe.

        Raises:
            UnsupportedOptionError: The message lists the languages the model has.
        """
        self._prompt_language(language)

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

    def _prompt_language(self, language: str) -> str:
        try:
            return language_name(language, supported=self.transcriber.languages)
        except ValueError as e:
            raise UnsupportedOptionError(str(e)) from None

    # ----------------------------------------------------------------------------------- decoding
    def detokenize(self, ids: list[int]) -> str:
        """The text of the decoder's token ids (special tokens dropped)."""
        return self.transcriber.detokenize(ids)

    def decode(
        self,
        mel: np.ndarray,
        language: str | None = None,
        context: str = "",
        temperature: float = 0.0,
        max_new_tokens: int | None = None,
    ) -> Decoded:
        """Decode one log-mel spectrogram as a single chunk (no chunking, no context carried over).

        Raises:
            UnsupportedOptionError: A language the model lacks.
        """
        options = TranscribeOptions(
            language=self._prompt_language(language) if language else None,
            context=context,
            temperatures=(float(temperature),),
            max_new_tokens=max_new_tokens,
        )
        chunk = self.transcriber.decode_features(mel, options)
        return Decoded(
            language=language_code(chunk.language),
            tokens=list(chunk.tokens),
            text=chunk.text,
            avg_logprob=chunk.avg_logprob,
            no_speech_prob=chunk.no_speech_prob,
            temperature=chunk.temperature,
            compression_ratio=chunk.compression_ratio,
        )

    def segments(
        self, audio: np.ndarray, options: RunOptions, on_progress: Callable[[float], None] | None = None
    ) -> Iterator[SegmentInfo]:
        """Transcribe 16 kHz mono samples into subtitle-sized segments, lazily, in time order.

        Args:
            audio: The samples.
            options: What to do.
            on_progress: Called with the seconds of input done after each chunk.

        Raises:
            UnsupportedOptionError: Word timestamps without an aligner, or a language the model lacks.
        """
        self._check_words(options)
        engine_options = self._engine_options(options)
        total = len(audio) / SAMPLE_RATE
        for clip_start, clip_end in options.clips:
            a = round(clip_start * SAMPLE_RATE)
            b = len(audio) if clip_end is None else min(len(audio), round(clip_end * SAMPLE_RATE))
            if b - a < HOP_LENGTH:
                continue
            offset = a / SAMPLE_RATE
            if options.batch_size:
                chunks = self.transcriber.transcribe_batched(audio[a:b], engine_options, options.batch_size)
            else:
                chunks = self.transcriber.transcribe_iter(audio[a:b], engine_options)
            for chunk in chunks:
                yield from self._shaper.shape(chunk, offset, options)
                if on_progress is not None:
                    on_progress(min(total, offset + chunk.audio_end))

    def stream(self, options: RunOptions, live: LiveOptions | None = None) -> LiveStream:
        """Open a live transcription (see :mod:`~.live`): feed it audio as it arrives.

        Segments end at pauses (Silero VAD) or at ``live.max_segment_seconds``; their words are timed by the
        aligner only with ``word_timestamps=True`` (segments are otherwise timed from the text's position).
        ``clips`` and ``batch_size`` do not apply.

        Raises:
            UnsupportedOptionError: Word timestamps without an aligner, a language the model lacks, or more
                live streams open at once than ``streams.limit``.
            SileroUnavailableError: The voice activity detector cannot run.
        """
        from qwen_whisper_compat.engine.live import LiveSession
        from qwen_whisper_compat.live import LiveStream
        from qwen_whisper_compat.vad import shared_silero_vad

        self._check_words(options)
        engine_options = dataclasses.replace(self._engine_options(options), word_timestamps=options.word_timestamps)
        detector = shared_silero_vad().stream()
        self.streams.take()
        try:
            session = LiveSession(self.transcriber, detector, engine_options, live)
        except BaseException:
            self.streams.give_back()
            raise

        def closed() -> None:
            session.close()
            self.streams.give_back()

        return LiveStream(session, lambda chunk, run: self._shaper.shape(chunk, 0.0, run), options, closed)

    def _check_words(self, options: RunOptions) -> None:
        if options.word_timestamps and not self.has_aligner:
            raise UnsupportedOptionError(
                "word_timestamps=True needs the forced aligner (Qwen3-ForcedAligner-0.6B): load the model by a "
                "model name (the aligner comes with it), put an aligner model folder in the model folder's "
                "aligner/ subfolder, or pass aligner=<folder> / --aligner_model <folder>"
            )

    def _engine_options(self, options: RunOptions) -> TranscribeOptions:
        """The engine's options for a run: aligned runs decode 30 s chunks; without the aligner every chunk
        is at most one segment long, cut at a quiet point."""
        aligned = options.word_timestamps or (options.align_segments and self.has_aligner)
        chunk_seconds, search = 30.0, 5.0
        if not aligned:
            chunk_seconds = min(30.0, 0.75 * options.limits.max_seconds)
            search = min(5.0, 0.25 * options.limits.max_seconds)
        return TranscribeOptions(
            language=self._prompt_language(options.language) if options.language else None,
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
