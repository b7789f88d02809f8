"""The faster-whisper shape: :class:`WhisperModel`, :class:`BatchedInferencePipeline` and the result
dataclasses, with faster-whisper 1.2's parameter names, order and defaults.

``segments, info = WhisperModel("turbo").transcribe("a.mp3")``: ``segments`` is a lazy generator (the
transcription runs while it is iterated), ids start at 1, ``words`` is ``None`` unless
``word_timestamps=True``, ``info`` holds the language (detected from the first 30 s when not given),
the durations and the options used. ``vad_filter=True`` removes non-speech with our voice activity
detector (:mod:`~.vad`) before transcribing and maps the times back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from qwen_whisper_compat import options as opts
from qwen_whisper_compat.audio import SAMPLE_RATE, decode_audio
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.recognizer import DEFAULT_TEMPERATURES, Recognizer, RunOptions
from qwen_whisper_compat.results import Segment, TranscriptionInfo, TranscriptionOptions, Word
from qwen_whisper_compat.shaping import SegmentInfo
from qwen_whisper_compat.speakers import SpeakerCounts
from qwen_whisper_compat.transcribe import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS, samples_of
from qwen_whisper_compat.vad import (
    SpeechTimestampsMap,
    VadOptions,
    collect_chunks,
    get_speech_timestamps,
    resolve_vad_options,
)

if TYPE_CHECKING:
    from qwen_whisper_compat.streaming import Stream

logger = logging.getLogger("qwen_whisper_compat.faster")

__all__ = [
    "BatchedInferencePipeline", "Segment", "TranscriptionInfo", "TranscriptionOptions", "VadOptions", "WhisperModel",
    "Word", "decode_audio",
]  # fmt: skip


#: compute_type -> (encoder, decoder) precision of the converted model.
COMPUTE_TYPES = {
    "float32": ("fp32", "f32"),
    "float16": ("fp16", "f16"),
    "bfloat16": ("fp16", "f16"),
    "int8": ("int8", "q8_0"),
    "int8_float32": ("int8", "q8_0"),
    "int8_float16": ("int8", "q8_0"),
    "int8_bfloat16": ("int8", "q8_0"),
    "int4": ("int8", "q4_k"),
}
#: Keyword arguments of ours accepted in ``**model_kwargs``.
MODEL_KWARGS = ("aligner", "segment_limits")


class WhisperModel:
    """faster-whisper's ``WhisperModel`` on Qwen3-ASR.

    ``model_size_or_path`` takes whisper names (``"turbo"``, ``"small"``), Qwen names
    (``"qwen3-asr-1.7b-q4_k"``) or a folder. ``compute_type`` picks the precision converted from the
    official checkpoint when a name is given (``int8``, ``float16``, ``float32``; ``default`` = our default).
    ``**model_kwargs`` takes ``aligner=`` (folder, name, or ``False``) and ``segment_limits=``.
    """

    def __init__(
        self,
        model_size_or_path: str,
        device: str = "auto",
        device_index: int | list[int] = 0,
        compute_type: str = "default",
        cpu_threads: int = 0,
        num_workers: int = 1,
        download_root: str | None = None,
        local_files_only: bool = False,
        files: dict[str, Any] | None = None,
        revision: str | None = None,
        use_auth_token: str | bool | None = None,
        **model_kwargs: Any,
    ) -> None:
        from qwen_whisper_compat.model import load_model

        opts.check_keywords(model_kwargs, MODEL_KWARGS, "WhisperModel")
        if files is not None:
            raise UnsupportedOptionError("files= (in-memory model files) is not supported; pass a model folder")
        if compute_type not in ("default", "auto") and compute_type not in COMPUTE_TYPES:
            raise UnsupportedOptionError(
                f"unknown compute_type {compute_type!r}; choose one of default, {', '.join(COMPUTE_TYPES)}"
            )
        for name, value, default in (("device_index", device_index, 0), ("num_workers", num_workers, 1)):
            if value != default:
                opts.warn_ignored(name, value)
        if revision is not None or use_auth_token is not None:
            logger.debug("revision/use_auth_token are not used: official checkpoints are fetched by name")
        self.model = load_model(
            model_size_or_path,
            device=device,
            download_root=download_root,
            aligner=model_kwargs.get("aligner"),
            threads=cpu_threads,
            local_files_only=local_files_only,
            segment_limits=model_kwargs.get("segment_limits"),
            precision=COMPUTE_TYPES.get(compute_type),
        )
        self.logger = logging.getLogger("faster_whisper")

    @property
    def supported_languages(self) -> list[str]:
        """Whisper codes of the languages the model transcribes."""
        return list(self.model.languages)

    @property
    def max_live_streams(self) -> int:
        """How many :meth:`stream` s may be open at once (1 unless raised)."""
        return self.model.max_live_streams

    @max_live_streams.setter
    def max_live_streams(self, n: int) -> None:
        self.model.max_live_streams = n

    def stream(
        self,
        language: str | None = None,
        *,
        initial_prompt: str | None = None,
        hotwords: str | None = None,
        word_timestamps: bool = False,
        condition_on_previous_text: bool = True,
        temperature: float | list[float] | tuple[float, ...] = DEFAULT_TEMPERATURES,
        compression_ratio_threshold: float | None = 2.4,
        log_prob_threshold: float | None = -1.0,
        no_speech_threshold: float | None = 0.6,
        **live: Any,
    ) -> Stream[Segment]:
        """Transcribe audio while it arrives (see :mod:`~.streaming`): a stream whose final events carry
        :class:`Segment` objects (ids from 1, as ``transcribe`` numbers them). ``hotwords`` join every
        segment's prompt context as in :meth:`transcribe`; ``**live`` takes the live options
        (``step_seconds``, ``min_silence_seconds``, ``max_segment_seconds``, ``partials``, ...)."""
        from qwen_whisper_compat.streaming import open_stream

        context = "\n".join(t for t in (hotwords, initial_prompt) if t) or None  # as transcribe() joins them
        return open_stream(
            self.model.recognizer, lambda i, info: _segment(i, info, None), 1, self.model.segment_limits,
            language=language, initial_prompt=context, carry_context=bool(hotwords), word_timestamps=word_timestamps,
            condition_on_previous_text=condition_on_previous_text, temperature=temperature,
            compression_ratio_threshold=compression_ratio_threshold, logprob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold, live=live,
        )  # fmt: skip

    def detect_language(
        self,
        audio: np.ndarray | None = None,
        features: np.ndarray | None = None,
        vad_filter: bool = False,
        vad_parameters: dict[str, Any] | VadOptions | None = None,
        language_detection_segments: int = 1,
        language_detection_threshold: float = 0.5,
    ) -> tuple[str, float, list[tuple[str, float]]]:
        """``(language, probability, all (code, probability) pairs, most likely first)`` from the first 30 s."""
        if features is not None:
            probs = self.model.recognizer.mel_language_probs(features)
        else:
            samples = samples_of(audio if audio is not None else np.zeros(0, np.float32))
            if vad_filter:
                samples, _ = _speech_only(samples, _vad_options(vad_parameters))
            probs = self.model.recognizer.language_probs(samples)
        ranked = sorted(probs.items(), key=lambda kv: kv[1], reverse=True)
        return ranked[0][0], ranked[0][1], ranked

    def transcribe(
        self,
        audio: str | BinaryIO | np.ndarray,
        language: str | None = None,
        task: str = "transcribe",
        log_progress: bool = False,
        beam_size: int = 5,
        best_of: int = 5,
        patience: float = 1,
        length_penalty: float = 1,
        repetition_penalty: float = 1,
        no_repeat_ngram_size: int = 0,
        temperature: float | list[float] | tuple[float, ...] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],  # noqa: B006
        compression_ratio_threshold: float | None = 2.4,
        log_prob_threshold: float | None = -1.0,
        no_speech_threshold: float | None = 0.6,
        condition_on_previous_text: bool = True,
        prompt_reset_on_temperature: float = 0.5,
        initial_prompt: str | Iterable[int] | None = None,
        prefix: str | None = None,
        suppress_blank: bool = True,
        suppress_tokens: list[int] | None = [-1],  # noqa: B006
        without_timestamps: bool = False,
        max_initial_timestamp: float = 1.0,
        word_timestamps: bool = False,
        prepend_punctuations: str = PREPEND_PUNCTUATIONS,
        append_punctuations: str = APPEND_PUNCTUATIONS,
        multilingual: bool = False,
        vad_filter: bool = False,
        vad_parameters: dict[str, Any] | VadOptions | None = None,
        max_new_tokens: int | None = None,
        chunk_length: int | None = None,
        clip_timestamps: str | list[float] = "0",
        hallucination_silence_threshold: float | None = None,
        hotwords: str | None = None,
        language_detection_threshold: float | None = 0.5,
        language_detection_segments: int = 1,
        *,
        diarize: bool = False,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> tuple[Iterable[Segment], TranscriptionInfo]:
        """Transcribe; returns ``(lazy generator of Segment, TranscriptionInfo)`` as faster-whisper does.

        Ours, keyword-only: ``diarize=True`` (``min_speakers``, ``max_speakers``) puts ``speaker`` on every
        ``Segment`` and ``Word`` and cuts segments where the speaker changes (the ``[diarize]`` extra)."""
        return _transcribe(self, dict(locals()), batched=False)


class BatchedInferencePipeline:
    """faster-whisper's batched pipeline: the same ``transcribe`` parameters plus ``batch_size``.

    ``batch_size`` chunks are decoded together in one llama.cpp batch (one KV sequence each); chunks do
    not see each other's text, as in faster-whisper's batched mode. ``vad_filter`` defaults to True.

    The parameter list repeats ``WhisperModel.transcribe``'s on purpose: callers and faster-whisper's own
    signature test inspect the explicit names, order and defaults (compat_tests/test_signatures.py).
    """

    def __init__(self, model: WhisperModel) -> None:
        self.model = model

    def transcribe(
        self,
        audio: str | BinaryIO | np.ndarray,
        language: str | None = None,
        task: str = "transcribe",
        log_progress: bool = False,
        beam_size: int = 5,
        best_of: int = 5,
        patience: float = 1,
        length_penalty: float = 1,
        repetition_penalty: float = 1,
        no_repeat_ngram_size: int = 0,
        temperature: float | list[float] | tuple[float, ...] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],  # noqa: B006
        compression_ratio_threshold: float | None = 2.4,
        log_prob_threshold: float | None = -1.0,
        no_speech_threshold: float | None = 0.6,
        condition_on_previous_text: bool = True,
        prompt_reset_on_temperature: float = 0.5,
        initial_prompt: str | Iterable[int] | None = None,
        prefix: str | None = None,
        suppress_blank: bool = True,
        suppress_tokens: list[int] | None = [-1],  # noqa: B006
        without_timestamps: bool = True,
        max_initial_timestamp: float = 1.0,
        word_timestamps: bool = False,
        prepend_punctuations: str = PREPEND_PUNCTUATIONS,
        append_punctuations: str = APPEND_PUNCTUATIONS,
        multilingual: bool = False,
        vad_filter: bool = True,
        vad_parameters: dict[str, Any] | VadOptions | None = None,
        max_new_tokens: int | None = None,
        chunk_length: int | None = None,
        clip_timestamps: list[dict[str, float]] | None = None,
        hallucination_silence_threshold: float | None = None,
        batch_size: int = 8,
        hotwords: str | None = None,
        language_detection_threshold: float | None = 0.5,
        language_detection_segments: int = 1,
        *,
        diarize: bool = False,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
    ) -> tuple[Iterable[Segment], TranscriptionInfo]:
        """Transcribe; returns ``(lazy generator of Segment, TranscriptionInfo)`` as faster-whisper does.

        Ours, keyword-only: ``diarize=True`` (``min_speakers``, ``max_speakers``) puts ``speaker`` on every
        ``Segment`` and ``Word`` and cuts segments where the speaker changes (the ``[diarize]`` extra)."""
        args = dict(locals())
        if batch_size < 1:
            raise UnsupportedOptionError(f"batch_size must be >= 1, got {batch_size}")
        return _transcribe(self.model, args, batched=True)


#: Parameters of faster-whisper's transcribe that have no meaning here, with their defaults.
_UNUSED_DEFAULTS: dict[str, Any] = {
    "beam_size": 5, "best_of": 5, "patience": 1, "length_penalty": 1, "repetition_penalty": 1,
    "no_repeat_ngram_size": 0, "prompt_reset_on_temperature": 0.5, "prefix": None, "suppress_blank": True,
    "suppress_tokens": [-1], "max_initial_timestamp": 1.0, "prepend_punctuations": PREPEND_PUNCTUATIONS,
    "append_punctuations": APPEND_PUNCTUATIONS, "chunk_length": None, "hallucination_silence_threshold": None,
    "language_detection_threshold": 0.5, "language_detection_segments": 1,
}  # fmt: skip


def _vad_options(value: dict[str, Any] | VadOptions | None) -> VadOptions:
    try:
        return resolve_vad_options(value)
    except (TypeError, ValueError) as e:
        raise UnsupportedOptionError(f"bad vad_parameters: {e}") from None


def _speech_only(samples: np.ndarray, vad: VadOptions) -> tuple[np.ndarray, SpeechTimestampsMap | None]:
    """The speech of ``samples`` (concatenated) and the map back to the original times."""
    if samples.size == 0:
        return samples, None
    chunks = get_speech_timestamps(samples, vad)
    speech = collect_chunks(samples, chunks) if chunks else np.zeros(0, np.float32)
    return speech, SpeechTimestampsMap(chunks, SAMPLE_RATE)


def _transcribe(
    model: WhisperModel, args: dict[str, Any], batched: bool
) -> tuple[Iterator[Segment], TranscriptionInfo]:
    args.pop("self")
    speakers = SpeakerCounts.take(args)
    opts.check_task(args["task"])
    for name, default in _UNUSED_DEFAULTS.items():
        if args[name] != default:
            opts.warn_ignored(name, args[name])
    recognizer = model.model.recognizer
    samples = samples_of(args["audio"])
    duration = samples.size / SAMPLE_RATE
    vad = _vad_options(args["vad_parameters"]) if args["vad_filter"] else None
    mapping = None
    if vad is not None:
        samples, mapping = _speech_only(samples, vad)
    language = args["language"]
    probability, ranked = 1.0, None
    if language is None:
        language, probability, ranked = model.detect_language(samples) if samples.size else ("en", 1.0, [])
    else:
        recognizer.check_language(language)
    prompt = args["initial_prompt"]
    if prompt is not None and not isinstance(prompt, str):
        prompt = recognizer.detokenize(list(prompt))
    context = "\n".join(p for p in (args["hotwords"], prompt) if p)
    clips = args["clip_timestamps"]
    run = RunOptions(
        language=None if args["multilingual"] else language,
        context=context,
        carry_context=bool(args["hotwords"]),
        carry_previous=args["condition_on_previous_text"],
        temperatures=opts.temperatures(args["temperature"]),
        compression_ratio_threshold=args["compression_ratio_threshold"],
        logprob_threshold=args["log_prob_threshold"],
        no_speech_threshold=args["no_speech_threshold"],
        word_timestamps=args["word_timestamps"],
        limits=model.model.segment_limits,
        clips=opts.parse_clip_timestamps(clips if clips != "0" else None),
        max_new_tokens=args["max_new_tokens"],
        batch_size=args.get("batch_size") if batched else None,
        speakers=speakers.map(samples) if speakers.wanted and samples.size else None,
    )
    options = TranscriptionOptions(
        **{f.name: args[f.name] for f in dataclasses.fields(TranscriptionOptions) if f.name in args},
        temperatures=list(run.temperatures),
    )
    info = TranscriptionInfo(
        language=language,
        language_probability=probability,
        duration=duration,
        duration_after_vad=samples.size / SAMPLE_RATE,
        all_language_probs=ranked,
        transcription_options=options,
        vad_options=vad,
    )
    return _segments(recognizer, samples, run, mapping, args["log_progress"]), info


def _segments(
    recognizer: Recognizer,
    samples: np.ndarray,
    run: RunOptions,
    mapping: SpeechTimestampsMap | None,
    log_progress: bool,
) -> Iterator[Segment]:
    if samples.size == 0:
        return
    bar: Any = None
    if log_progress:
        import tqdm

        bar = tqdm.tqdm(total=round(samples.size / SAMPLE_RATE, 2), unit="seconds")

    def progress(seconds: float) -> None:
        if bar is not None:
            bar.update(round(seconds - bar.n, 2))

    try:
        for i, info in enumerate(recognizer.segments(samples, run, on_progress=progress), start=1):
            yield _segment(i, info, mapping)
    finally:
        if bar is not None:
            bar.close()


def _segment(index: int, info: SegmentInfo, mapping: SpeechTimestampsMap | None) -> Segment:
    start, end, timed = info.rounded(mapping.get_original_time if mapping is not None else None)
    speakers = info.word_speakers or ()
    words = None if timed is None else [
        Word(w.start, w.end, w.word, w.probability, speakers[i] if i < len(speakers) else None)
        for i, w in enumerate(timed)
    ]
    return Segment(
        id=index,
        seek=info.seek,
        start=start,
        end=end,
        text=info.text,
        tokens=list(info.tokens),
        avg_logprob=info.avg_logprob,
        compression_ratio=info.compression_ratio,
        no_speech_prob=info.no_speech_prob,
        words=words,
        temperature=info.temperature,
        speaker=info.speaker,
    )
