"""Speech regions for faster-whisper's ``vad_filter``: Silero VAD by default, an energy detector as fallback.

:func:`get_speech_timestamps` returns ``{"start", "end"}`` sample dicts with faster-whisper's interface and
options (:class:`VadOptions`); :func:`collect_chunks` and :class:`SpeechTimestampsMap` keep the speech and map
its times back. ``method`` picks the detector:

* ``"silero"`` (default): Silero VAD v6.2, vendored as ``assets/silero_vad/silero_vad_16k_sequence.onnx``
  (MIT, from silero-vad 6.2.3; see the NOTICE there), run by onnxruntime on one thread (:class:`SileroVad`,
  created on first use, once per process, shared by all threads; onnxruntime is imported only then). One
  speech probability per 32 ms window of 16 kHz audio, turned into regions by a line-for-line port of
  faster-whisper 1.2.1's post-processing (:func:`timestamps_from_probabilities`). faster-whisper bundles the
  older v6.0 weights, so its regions and ours agree closely, not exactly.
* ``"energy"``: numpy only, any sample rate; used instead of Silero, with one logged warning, when the Silero
  session cannot be created. It scores each 10 ms frame by its speech-band level (200-4000 Hz, 20 ms Hann
  window, dB) above a noise floor: the higher of the lowest level in the 0.5 s before the frame and in the
  0.5 s after it, never below -70 dBFS. Speech rises and falls several times a second, so a syllable stands
  above both; steady sound (fan, hiss, hum, a held tone) is its own floor on at least one side. The score is
  0 at the floor and 1 at 16 dB above it, so ``threshold`` 0.5 asks for 8 dB and the default
  ``neg_threshold`` (``threshold - 0.15``) ends speech below 5.6 dB.

``benchmarks/vad_compare.py`` measures both against faster-whisper's Silero: the energy detector takes loud
sound that rises and falls like speech (music, clatter, a crowd) for speech and misses more speech under
noise, which is why Silero is the default.

Both post-processings, and the live segmenter, start and end speech by one rule, Silero's hysteresis
(:class:`~qwen_whisper_compat.engine.speech.SpeechGate`): speech starts at a score of ``threshold``; a pause
starts below ``neg_threshold`` and lasts until a score of ``threshold``; a pause of ``min_silence_duration_ms``
ends the speech. The energy detector's post-processing (:func:`timestamps_from_scores`) differs from
faster-whisper's where 10 ms frames and energy scores need it:

* speech starts where the run of frames scoring at least ``neg_threshold`` that reaches ``threshold`` began
  (faster-whisper starts a region at the first window above ``threshold``, so a soft word
  onset is left to the padding);
* regions separated by less than ``min_silence_duration_ms`` are merged;
* regions longer than ``max_speech_duration_s`` (less twice the padding) are split at their longest inner
  silence, recursively, and a region without one is cut at its quietest frame (faster-whisper splits at
  the last silence longer than 98 ms, or cuts at the limit);
* regions not longer than ``min_speech_duration_ms`` are dropped;
* each region is padded by ``speech_pad_ms`` on both sides, and a gap shorter than twice the padding is
  shared half and half between its neighbours (as in faster-whisper);
* a region still open at the end of the audio ends where its speech ends (faster-whisper extends it to
  the end of the audio) plus the padding.

This module is the faster-whisper-shaped facade; the detectors are :mod:`.silero` and :mod:`.energy`, and
what both share (the options, the padding) is :mod:`.common`.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from qwen_whisper_compat.errors import SileroUnavailableError
from qwen_whisper_compat.vad.common import VadOptions, as_mono, check_option_names, resolve_vad_options
from qwen_whisper_compat.vad.energy import FRAME_SECONDS, frame_hop, frame_scores, timestamps_from_scores
from qwen_whisper_compat.vad.silero import (
    SILERO_MODEL,
    SILERO_SAMPLING_RATE,
    SILERO_WINDOW,
    SharedSilero,
    SileroVad,
    timestamps_from_probabilities,
)

logger = logging.getLogger("qwen_whisper_compat.vad")

__all__ = [
    "FRAME_SECONDS",
    "METHODS",
    "SILERO_MODEL",
    "SILERO_SAMPLING_RATE",
    "SILERO_WINDOW",
    "SileroUnavailableError",
    "SileroVad",
    "SpeechTimestampsMap",
    "VadOptions",
    "collect_chunks",
    "frame_scores",
    "get_speech_timestamps",
    "resolve_vad_options",
    "shared_silero_vad",
    "timestamps_from_probabilities",
    "timestamps_from_scores",
]

Method = Literal["silero", "energy"]
#: The detectors :func:`get_speech_timestamps` offers; the first is the default.
METHODS: tuple[Method, ...] = ("silero", "energy")

#: The process-wide Silero session (created on first use); tests swap it.
_SHARED = SharedSilero()


def get_speech_timestamps(
    audio: np.ndarray,
    options: VadOptions | None = None,
    sampling_rate: int = 16000,
    *,
    method: Method = "silero",
    **kwargs: Any,
) -> list[dict[str, int]]:
    """Speech regions of ``audio`` as ``{"start": sample, "end": sample}`` dicts (end exclusive), in order.

    Args:
        audio: Mono float samples in [-1, 1].
        options: Detection options; ``None`` builds them from ``kwargs``. faster-whisper's keyword name
            ``vad_options`` is accepted too.
        sampling_rate: Sample rate of ``audio`` in Hz: 16000 for Silero, any rate for the energy detector.
        method: ``"silero"`` (default; falls back to ``"energy"``, with one logged warning per process, when
            the Silero session cannot be created) or ``"energy"``. See the module docstring.
        **kwargs: :class:`VadOptions` fields, overriding those of ``options``.

    Returns:
        Non-overlapping regions in increasing order; ``[]`` for empty audio or audio without speech.

    Raises:
        ValueError: ``audio`` is not 1-D float, ``method`` is unknown, ``sampling_rate`` is not positive (or
            not 16000 for Silero), or an option is out of range.
        TypeError: A keyword is not a :class:`VadOptions` field.
    """
    if options is None:
        options = kwargs.pop("vad_options", None)
    opts = resolve_vad_options(options)
    if kwargs:
        check_option_names(kwargs)
        opts = dataclasses.replace(opts, **kwargs)
    samples = as_mono(audio)
    if method not in METHODS:
        raise ValueError(f"unknown VAD method {method!r}; expected one of: {', '.join(METHODS)}")
    if sampling_rate <= 0:
        raise ValueError(f"sampling_rate must be > 0, got {sampling_rate}")
    if method == "silero" and sampling_rate != SILERO_SAMPLING_RATE:
        raise ValueError(
            f"the Silero VAD needs {SILERO_SAMPLING_RATE} Hz audio, got sampling_rate={sampling_rate}; resample it "
            "(load_audio(..., sr=16000)) or pass method='energy'"
        )
    if samples.size == 0:
        return []
    model = _SHARED.get() if method == "silero" else None
    if model is not None:
        probabilities = model.probabilities(samples)
        regions = timestamps_from_probabilities(probabilities, opts, samples.size, sampling_rate)
    else:
        scores = frame_scores(samples, sampling_rate)
        regions = timestamps_from_scores(scores, opts, frame_hop(sampling_rate), samples.size, sampling_rate)
    logger.debug(
        "%s: %d speech region(s), %.2f of %.2f s",
        "silero" if model is not None else "energy",
        len(regions),
        sum(r["end"] - r["start"] for r in regions) / sampling_rate,
        samples.size / sampling_rate,
    )
    return regions


def shared_silero_vad() -> SileroVad:
    """The process-wide Silero session that :func:`get_speech_timestamps` uses (created on first call).

    Raises:
        SileroUnavailableError: It cannot be created (see :class:`SileroVad`).
    """
    vad = _SHARED.get()
    if vad is None:
        error = _SHARED.error
        raise SileroUnavailableError(str(error)) from error
    return vad


def collect_chunks(audio: np.ndarray, chunks: Sequence[Mapping[str, int]]) -> np.ndarray:
    """The samples of ``chunks`` (``{"start", "end"}`` dicts, in order) concatenated; empty when there are none.

    Raises:
        ValueError: The chunks overlap, are out of order, or reach outside ``audio``.
    """
    samples = as_mono(audio)
    bounds = _check_chunks(chunks, samples.size)
    if not bounds:
        return np.zeros(0, dtype=samples.dtype)
    return np.concatenate([samples[s:e] for s, e in bounds])


class SpeechTimestampsMap:
    """Maps times in the audio built by :func:`collect_chunks` back to times in the original audio.

    Args:
        chunks: The ``{"start", "end"}`` sample dicts given to :func:`collect_chunks`.
        sampling_rate: Their sample rate.
        time_precision: Decimals of the returned times (faster-whisper's default, 2).

    Raises:
        ValueError: The chunks overlap or are out of order.
    """

    def __init__(self, chunks: Sequence[Mapping[str, int]], sampling_rate: int = 16000, time_precision: int = 2):
        self.sampling_rate = sampling_rate
        self.time_precision = time_precision
        bounds = _check_chunks(chunks, None)
        #: End of each chunk in the concatenated audio (samples).
        self.chunk_end_sample: list[int] = []
        #: Seconds left out before each chunk.
        self.total_silence_before: list[float] = []
        kept = 0
        for start, end in bounds:
            self.total_silence_before.append((start - kept) / sampling_rate)
            kept += end - start
            self.chunk_end_sample.append(kept)

    def get_original_time(self, time: float, chunk_index: int | None = None, is_end: bool = False) -> float:
        """The original time of ``time`` seconds into the concatenated speech.

        Args:
            time: Seconds into the concatenated audio.
            chunk_index: The chunk the time belongs to, if known.
            is_end: The time ends something: at a boundary between two chunks it belongs to the earlier one.
        """
        if not self.chunk_end_sample:
            return round(time, self.time_precision)
        if chunk_index is None:
            chunk_index = self.get_chunk_index(time, is_end)
        return round(self.total_silence_before[chunk_index] + time, self.time_precision)

    def get_chunk_index(self, time: float, is_end: bool = False) -> int:
        """Index of the chunk holding ``time`` seconds of the concatenated audio (the last one past the end).

        The time is taken to the nearest sample (faster-whisper truncates, which puts a boundary time computed
        in floating point, such as 46560 / 16000, into the chunk before it).
        """
        sample = round(time * self.sampling_rate)
        if is_end:
            index = bisect.bisect_left(self.chunk_end_sample, sample)
            if index < len(self.chunk_end_sample) and self.chunk_end_sample[index] == sample:
                return index
        return min(bisect.bisect_right(self.chunk_end_sample, sample), len(self.chunk_end_sample) - 1)


def _check_chunks(chunks: Sequence[Mapping[str, int]], num_samples: int | None) -> list[tuple[int, int]]:
    bounds = [(int(c["start"]), int(c["end"])) for c in chunks]
    previous_end = 0
    for i, (start, end) in enumerate(bounds):
        if start < previous_end or end < start:
            raise ValueError(f"chunk {i} ({start}..{end}) overlaps the previous one or ends before it starts")
        if num_samples is not None and end > num_samples:
            raise ValueError(f"chunk {i} ends at sample {end}, after the audio's {num_samples} samples")
        previous_end = end
    return bounds
