"""What each whisper / faster-whisper option means for this engine.

Every keyword of the two upstream APIs is either honoured (translated into :class:`~.recognizer.RunOptions`)
or has no meaning for a Qwen3-ASR decoder (beam search, whisper's token suppression, timestamp tokens,
fp16 switches). Those are accepted, never a TypeError, and warned about once per process, so a script
written for whisper runs unchanged and its author learns what was ignored. The warning points at the
caller's line (the first frame outside this package), whichever entry point was called.

This module also parses the option values the two APIs share (``temperature``, ``clip_timestamps``).
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from qwen_whisper_compat.errors import UnsupportedOptionError

#: Options accepted and ignored, with the reason given in the warning.
IGNORED: Mapping[str, str] = {
    "fp16": "the precision comes from the model folder (e.g. model 'qwen3-asr-1.7b-q4_k')",
    "beam_size": "decoding is greedy with temperature fallback, as the official Qwen3-ASR backends",
    "best_of": "decoding is greedy with temperature fallback, as the official Qwen3-ASR backends",
    "patience": "decoding is greedy with temperature fallback (no beam search)",
    "length_penalty": "decoding is greedy with temperature fallback (no beam search)",
    "repetition_penalty": "repetitions are caught by the loop guard and temperature fallback",
    "no_repeat_ngram_size": "repetitions are caught by the loop guard and temperature fallback",
    "prompt_reset_on_temperature": "the previous text is carried unless condition_on_previous_text=False",
    "prefix": "Qwen3-ASR has no decoder prefix; use initial_prompt for context text",
    "prompt": "use initial_prompt for context text",
    "suppress_tokens": "whisper's token ids do not apply to the Qwen vocabulary",
    "suppress_blank": "whisper's token ids do not apply to the Qwen vocabulary",
    "without_timestamps": "segment times come from the aligner or the chunk bounds, not timestamp tokens",
    "max_initial_timestamp": "segment times come from the aligner or the chunk bounds, not timestamp tokens",
    "prepend_punctuations": "words keep their punctuation as the transcript writes it",
    "append_punctuations": "words keep their punctuation as the transcript writes it",
    "hallucination_silence_threshold": "not implemented; no_speech_threshold still drops silent chunks",
    "chunk_length": "the engine cuts ~30 s chunks at quiet points itself",
    "language_detection_threshold": "the language is read once from the first 30 s",
    "language_detection_segments": "the language is read once from the first 30 s",
    "num_workers": (
        "calls from several threads are safe and share the one loaded model: its decoder serves them a chunk at a "
        "time (live streams first); no second llama.cpp context is loaded, since one call already uses every core"
    ),
    "compute_type": "the precision comes from the model folder (e.g. model 'qwen3-asr-1.7b-q4_k')",
    "device_index": "the engine uses the first device",
    "in_memory": "the model files are memory-mapped",
}

#: whisper's DecodingOptions fields: the only keys ``**decode_options`` may hold (besides ours).
DECODING_FIELDS = (
    "task", "language", "temperature", "sample_len", "best_of", "beam_size", "patience", "length_penalty",
    "prompt", "prefix", "suppress_tokens", "suppress_blank", "without_timestamps", "max_initial_timestamp", "fp16",
)  # fmt: skip

#: Keywords of our own accepted by ``transcribe(**decode_options)``.
EXTRA_OPTIONS = (
    "segment_max_seconds", "segment_max_width", "align_segments", "context", "postprocess", "on_segment",
    "vad_filter", "vad_parameters", "diarize", "min_speakers", "max_speakers",
)  # fmt: skip

_warned: set[str] = set()
_lock = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the calling function point at the first frame
    outside this package: the user's line, however deep inside the package the warning is raised."""
    level = 1
    frame = sys._getframe(1)
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


def warn_ignored(name: str, value: Any = None) -> None:
    """Warn (once per process and option) that ``name`` has no effect on this engine."""
    with _lock:
        if name in _warned:
            return
        _warned.add(name)
    reason = IGNORED.get(name, "it has no meaning for Qwen3-ASR")
    shown = "" if value is None else f"={value!r}"
    warnings.warn(f"qwen_whisper_compat ignores {name}{shown}: {reason}", UserWarning, stacklevel=caller_stacklevel())


def check_task(task: str | None) -> None:
    """Only transcription: Qwen3-ASR does not translate."""
    if task in (None, "transcribe"):
        return
    if task == "translate":
        raise UnsupportedOptionError(
            "task='translate' is not supported: Qwen3-ASR transcribes speech in its own language and does "
            "not translate; transcribe and translate the text with another tool"
        )
    raise UnsupportedOptionError(f"unknown task {task!r}; the only supported task is 'transcribe'")


def check_keywords(given: Iterable[str], allowed: Iterable[str], function: str) -> None:
    """A TypeError for a keyword the upstream function would not accept either (typos stay loud)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")


def temperatures(value: float | Iterable[float]) -> tuple[float, ...]:
    """whisper's ``temperature`` (one value or the fallback sequence) as a tuple."""
    if isinstance(value, (int, float)):
        return (float(value),)
    out = tuple(float(t) for t in value)
    if not out:
        raise UnsupportedOptionError("temperature must be a number or a non-empty sequence of numbers")
    return out


def parse_clip_timestamps(
    clips: str | list[float] | list[dict[str, float]] | None,
) -> tuple[tuple[float, float | None], ...]:
    """whisper's ``clip_timestamps`` (``"start,end,start,end,..."`` or a list of seconds, the last end
    optional) or faster-whisper's batched ``[{"start": s, "end": e}, ...]`` as (start, end) spans.

    Raises:
        UnsupportedOptionError: Not numbers, a negative start, or an end before its start.
    """
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
    pairs = tuple(zip(values[::2], ends, strict=True))
    for start, end in pairs:
        if start < 0 or (end is not None and end < start):
            raise UnsupportedOptionError(f"clip_timestamps span ({start}, {end}) is not a valid start,end pair")
    return pairs
