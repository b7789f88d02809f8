"""The twin of ``whisper.transcribe.transcribe``: same keywords, same defaults, same result dict.

How whisper's keywords map onto the engine (``options.py`` lists the ones that are only accepted):

- ``temperature``, ``compression_ratio_threshold``, ``logprob_threshold``: temperature fallback, as whisper.
- ``no_speech_threshold``: a chunk that is probably silence and decoded unsurely is dropped, as whisper.
- ``initial_prompt``: Qwen3-ASR's context text (names, terms, background) for the first chunk;
  ``carry_initial_prompt=True`` repeats it for every chunk; ``condition_on_previous_text`` carries the
  end of the previous chunk's text.
- ``word_timestamps``: words from the forced aligner, on every segment.
- ``clip_timestamps``: only those spans are transcribed.
- ``language`` (in ``decode_options``): a whisper code or a language name; ``None`` lets the model detect
  it per chunk; the result reports the first chunk's language as a whisper code.
- ``task="translate"``: a clear :class:`~.errors.UnsupportedOptionError` (Qwen3-ASR does not translate).

Our own keywords, also accepted in ``decode_options``:

- ``context``: context text for every chunk (with an ``initial_prompt``, that is then carried too);
- ``postprocess``: post-processors applied to each segment's text, in order, given as names registered by
  plugins (``["chinese_itn"]``, or ``"chinese_itn,other"``) or as ``function(text, language) -> text``
  callables; off by default (see :mod:`~.postprocess` for the words);
- ``segment_max_seconds``, ``segment_max_width`` (see :class:`~.segments.SegmentLimits`);
- ``on_segment``: called with each segment dict as soon as it is made (servers stream them);
- ``diarize=True`` (``min_speakers``, ``max_speakers``): speaker labels (:mod:`~.diarize`, the ``[diarize]``
  extra) on every segment and word; a segment is cut where the speaker changes;
- ``vad_filter=True`` (and ``vad_parameters``, as faster-whisper's: a dict or :class:`~.vad.VadOptions`):
  transcribe only the speech regions :mod:`~.vad` finds, as clips of the original timeline (so times need
  no mapping back); not with ``clip_timestamps``;
- ``align_segments=False``: do not run the aligner just to time segments: faster, and segment times are
  then estimated inside quiet-point chunks of at most ``segment_max_seconds``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from qwen_whisper_compat import options as opts
from qwen_whisper_compat.audio import SAMPLE_RATE, prepare_audio
from qwen_whisper_compat.errors import UnsupportedOptionError
from qwen_whisper_compat.recognizer import DEFAULT_TEMPERATURES, RunOptions
from qwen_whisper_compat.results import ResultDict, SegmentDict
from qwen_whisper_compat.shaping import SegmentInfo
from qwen_whisper_compat.speakers import SpeakerCounts
from qwen_whisper_compat.tokenizer import LANGUAGES
from qwen_whisper_compat.utils import format_timestamp, make_safe

if TYPE_CHECKING:
    from qwen_whisper_compat.model import Whisper
    from qwen_whisper_compat.plugins import PostProcessor

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def transcribe(
    model: Whisper,
    audio: str | np.ndarray | Any,
    *,
    verbose: bool | None = None,
    temperature: float | tuple[float, ...] = DEFAULT_TEMPERATURES,
    compression_ratio_threshold: float | None = 2.4,
    logprob_threshold: float | None = -1.0,
    no_speech_threshold: float | None = 0.6,
    condition_on_previous_text: bool = True,
    initial_prompt: str | None = None,
    carry_initial_prompt: bool = False,
    word_timestamps: bool = False,
    prepend_punctuations: str = PREPEND_PUNCTUATIONS,
    append_punctuations: str = APPEND_PUNCTUATIONS,
    clip_timestamps: str | list[float] = "0",
    hallucination_silence_threshold: float | None = None,
    **decode_options: Any,
) -> ResultDict:
    """Transcribe an audio file or 16 kHz samples; returns ``{"text", "segments", "language"}``.

    Args:
        model: A model from :func:`~qwen_whisper_compat.load_model`.
        audio: A path (any format PyAV reads), bytes, a binary file object, or float32 16 kHz mono
            samples (numpy array or torch tensor).
        verbose: ``True`` prints the detected language and each segment as whisper does; ``False`` shows
            a progress bar; ``None`` prints nothing.

    The other keywords are whisper's (see the module docstring for what each one does here).

    Raises:
        TypeError: A keyword whisper would not accept either.
        UnsupportedOptionError: ``task="translate"``, a language the model lacks, word timestamps
            without an aligner, or an unknown post-processor name.
        AudioLoadError: The audio cannot be read.
    """
    opts.check_keywords(decode_options, (*opts.DECODING_FIELDS, *opts.EXTRA_OPTIONS), "transcribe")
    opts.check_task(decode_options.pop("task", "transcribe"))
    language: str | None = decode_options.pop("language", None)
    sample_len = decode_options.pop("sample_len", None)
    limits = model.segment_limits
    if "segment_max_seconds" in decode_options:
        limits = dataclasses.replace(limits, max_seconds=float(decode_options.pop("segment_max_seconds")))
    if "segment_max_width" in decode_options:
        limits = dataclasses.replace(limits, max_width=int(decode_options.pop("segment_max_width")))
    align_segments = bool(decode_options.pop("align_segments", True))
    context = str(decode_options.pop("context", "") or "")
    if context:  # our context text goes to every chunk (the initial prompt then too)
        initial_prompt = "\n".join(p for p in (context, initial_prompt) if p)
        carry_initial_prompt = True
    on_segment: Callable[[SegmentDict], None] | None = decode_options.pop("on_segment", None)
    vad_filter = bool(decode_options.pop("vad_filter", False))
    vad_parameters = decode_options.pop("vad_parameters", None)
    speakers = SpeakerCounts.take(decode_options)
    postprocess: tuple[PostProcessor, ...] = ()
    if decode_options.get("postprocess"):
        from qwen_whisper_compat.plugins import resolve_postprocessors

        postprocess = resolve_postprocessors(decode_options["postprocess"])
    decode_options.pop("postprocess", None)
    for name, value in decode_options.items():
        opts.warn_ignored(name, value)
    if prepend_punctuations != PREPEND_PUNCTUATIONS:
        opts.warn_ignored("prepend_punctuations")
    if append_punctuations != APPEND_PUNCTUATIONS:
        opts.warn_ignored("append_punctuations")
    if hallucination_silence_threshold is not None:
        opts.warn_ignored("hallucination_silence_threshold", hallucination_silence_threshold)

    run = RunOptions(
        language=language,
        context=initial_prompt or "",
        carry_context=carry_initial_prompt,
        carry_previous=condition_on_previous_text,
        temperatures=opts.temperatures(temperature),
        compression_ratio_threshold=compression_ratio_threshold,
        logprob_threshold=logprob_threshold,
        no_speech_threshold=no_speech_threshold,
        word_timestamps=word_timestamps,
        align_segments=align_segments,
        limits=limits,
        clips=opts.parse_clip_timestamps(clip_timestamps),
        max_new_tokens=sample_len,
        postprocess=postprocess,
    )
    samples = samples_of(audio)
    if vad_filter:
        if clip_timestamps not in ("0", "", None, [0], [0.0]):
            raise UnsupportedOptionError("clip_timestamps and vad_filter=True cannot be combined: pass one of them")
        clips = speech_clips(samples, vad_parameters)
        if not clips:  # no speech: no segments
            return {"text": "", "segments": [], "language": language if language is not None else "en"}
        run = dataclasses.replace(run, clips=clips)
    if speakers.wanted:
        run = dataclasses.replace(run, speakers=speakers.map(samples))
    printer = _Printer(verbose, language is None, len(samples) / SAMPLE_RATE)
    segments: list[SegmentDict] = []
    detected = ""
    try:
        for info in model.recognizer.segments(samples, run, on_progress=printer.progress):
            if not detected and info.language:
                detected = info.language
                printer.language(detected)
            segment = segment_dict(len(segments), info)
            segments.append(segment)
            printer.segment(segment)
            if on_segment is not None:
                on_segment(segment)
    finally:
        printer.close()
    if language is None and not detected:
        probs = model.recognizer.language_probs(samples)
        detected = max(probs, key=probs.__getitem__)
        printer.language(detected)
    return {
        "text": "".join(s["text"] for s in segments),
        "segments": segments,
        "language": language if language is not None else detected,
    }


def speech_clips(samples: np.ndarray, parameters: Any = None) -> tuple[tuple[float, float | None], ...]:
    """The speech regions of 16 kHz ``samples`` (:mod:`~.vad`, faster-whisper's ``vad_parameters``) as clips in
    seconds."""
    from qwen_whisper_compat.vad import get_speech_timestamps, resolve_vad_options

    try:
        vad = resolve_vad_options(parameters)
    except (TypeError, ValueError) as e:
        raise UnsupportedOptionError(f"bad vad_parameters: {e}") from None
    regions = get_speech_timestamps(samples, vad) if samples.size else []
    return tuple((r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in regions)


def samples_of(audio: Any) -> np.ndarray:
    """Input audio as 16 kHz float32 samples; an empty array stays empty (no segments)."""
    if isinstance(audio, np.ndarray) and audio.size == 0:
        return np.zeros(0, dtype=np.float32)
    return prepare_audio(audio)


def segment_dict(index: int, info: SegmentInfo) -> SegmentDict:
    """whisper's segment dict (keys in whisper's order; ``words`` only when they were requested)."""
    start, end, timed = info.rounded()
    segment: SegmentDict = {
        "id": index,
        "seek": info.seek,
        "start": start,
        "end": end,
        "text": info.text,
        "tokens": list(info.tokens),
        "temperature": info.temperature,
        "avg_logprob": info.avg_logprob,
        "compression_ratio": info.compression_ratio,
        "no_speech_prob": info.no_speech_prob,
    }
    if info.speaker is not None:
        segment["speaker"] = info.speaker
    if timed is not None:
        segment["words"] = [
            {"word": w.word, "start": w.start, "end": w.end, "probability": w.probability} for w in timed
        ]
        for word, speaker in zip(segment["words"], info.word_speakers or (), strict=False):
            if speaker is not None:
                word["speaker"] = speaker
    return segment


class _Printer:
    """whisper's console output: ``verbose=True`` lines, ``verbose=False`` a tqdm bar, ``None`` nothing."""

    def __init__(self, verbose: bool | None, detecting: bool, seconds: float) -> None:
        self.verbose = verbose
        self.bar: Any = None
        self.done = 0
        self._language_shown = False
        if verbose and detecting:
            print("Detecting language using up to the first 30 seconds. Use `--language` to specify the language")
        if verbose is False:
            import tqdm

            self.bar = tqdm.tqdm(total=round(seconds * 100), unit="frames")

    def language(self, code: str) -> None:
        if self.verbose is not None and not self._language_shown:
            self._language_shown = True
            line = f"Detected language: {LANGUAGES.get(code, code).title()}"
            if self.bar is not None:  # whisper prints it in both modes; keep the bar intact
                self.bar.write(line)
            else:
                print(line)

    def segment(self, segment: SegmentDict) -> None:
        if self.verbose:
            line = f"[{format_timestamp(segment['start'])} --> {format_timestamp(segment['end'])}] {segment['text']}"
            print(make_safe(line), flush=True)

    def progress(self, seconds: float) -> None:
        if self.bar is not None:
            frames = round(seconds * 100)
            self.bar.update(max(0, frames - self.done))
            self.done = max(self.done, frames)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
