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

The energy detector's post-processing (:func:`timestamps_from_scores`) differs from faster-whisper's where
10 ms frames and energy scores need it:

* speech is a run of frames scoring at least ``neg_threshold`` that contains a frame scoring at least
  ``threshold`` (faster-whisper starts a region at the first window above ``threshold``, so a soft word
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
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qwen_whisper_compat.errors import SileroUnavailableError

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

#: The vendored Silero model, inside this package.
SILERO_MODEL = "assets/silero_vad/silero_vad_16k_sequence.onnx"
SILERO_SAMPLING_RATE = 16000
SILERO_WINDOW = 512  # samples per speech probability (32 ms)
_SILERO_CONTEXT = 64  # samples before each window that the model reads with it
_SILERO_STATE = (1, 1, 128)  # LSTM h and c
_SILERO_BLOCK = 2048  # windows (65 s) per session call: bounds memory, as fast as larger blocks

#: Hop between two frame scores.
FRAME_SECONDS = 0.01
_BAND_HZ = (200.0, 4000.0)  # the band whose power is measured: most speech energy, little hum or hiss
_FLOOR_REACH_FRAMES = 50  # the noise floor looks 0.5 s back and 0.5 s ahead
_MIN_FLOOR_DB = -70.0  # digital silence is not a floor: speech must reach -70 dBFS + margin
_SCORE_RANGE_DB = 16.0  # score 1.0 is this far above the floor
_FFT_BATCH = 16384
_SILENCE_DB = -120.0


@dataclass(frozen=True)
class VadOptions:
    """Voice activity detection options, with faster-whisper's field names and defaults.

    ``vad_parameters`` of faster-whisper's ``transcribe`` is either this object or a dict of its fields;
    :func:`resolve_vad_options` turns either into one.
    """

    threshold: float = 0.5
    """Speech starts at a window scoring at least this: a speech probability for Silero; for the energy
    detector 0.5 means 8 dB above the local noise floor."""
    neg_threshold: float | None = None
    """Speech continues while frames score at least this; ``None`` means ``max(threshold - 0.15, 0.01)``."""
    min_speech_duration_ms: int = 0
    """Speech regions not longer than this are dropped."""
    max_speech_duration_s: float = float("inf")
    """Longer regions are split (at a silence where there is one) so that padded regions stay within this."""
    min_silence_duration_ms: int = 2000
    """A region ends only after this much silence; shorter pauses are kept inside the region."""
    speech_pad_ms: int = 400
    """Each region is widened by this much on both sides."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold must be within [0, threshold={self.threshold}], got {self.neg_threshold}")
        if self.min_speech_duration_ms < 0 or self.min_silence_duration_ms < 0 or self.speech_pad_ms < 0:
            raise ValueError(
                "min_speech_duration_ms, min_silence_duration_ms and speech_pad_ms must be >= 0, got "
                f"{self.min_speech_duration_ms}, {self.min_silence_duration_ms} and {self.speech_pad_ms}"
            )
        if not self.max_speech_duration_s > 0:
            raise ValueError(f"max_speech_duration_s must be > 0, got {self.max_speech_duration_s}")

    @property
    def effective_neg_threshold(self) -> float:
        """``neg_threshold``, or faster-whisper's default for it."""
        if self.neg_threshold is not None:
            return self.neg_threshold
        return min(self.threshold, max(self.threshold - 0.15, 0.01))


def resolve_vad_options(parameters: VadOptions | Mapping[str, Any] | None = None) -> VadOptions:
    """faster-whisper's ``vad_parameters`` (a :class:`VadOptions`, a dict of its fields, or ``None``).

    Raises:
        TypeError: A key is not a :class:`VadOptions` field (the message lists them).
        ValueError: A value is out of range.
    """
    if parameters is None:
        return VadOptions()
    if isinstance(parameters, VadOptions):
        return parameters
    _check_option_names(parameters)
    return VadOptions(**parameters)


def _check_option_names(parameters: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(VadOptions)]
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise TypeError(f"unknown VAD parameter(s) {', '.join(unknown)}; expected some of: {', '.join(names)}")


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
        _check_option_names(kwargs)
        opts = dataclasses.replace(opts, **kwargs)
    samples = _as_mono(audio)
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


class SileroVad:
    """Silero VAD in one onnxruntime session (CPU, one thread): speech probabilities per 32 ms window.

    ``onnxruntime.InferenceSession.run`` is thread-safe and the LSTM state is local to each call, so one
    instance serves every thread. :func:`get_speech_timestamps` uses :func:`shared_silero_vad`.

    Args:
        model: A Silero "sequence" ONNX file (inputs ``input`` [N, 576], ``h``, ``c``); ``None`` loads the
            vendored :data:`SILERO_MODEL`.

    Raises:
        SileroUnavailableError: onnxruntime cannot be imported or cannot load the model.
    """

    def __init__(self, model: str | os.PathLike[str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise SileroUnavailableError(f"the Silero VAD needs onnxruntime, which cannot be imported: {e}") from e
        name = str(model) if model is not None else f"qwen_whisper_compat/{SILERO_MODEL}"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.enable_cpu_mem_arena = False  # as faster-whisper: no arena growing with the longest input
        opts.log_severity_level = 3
        try:
            source = Path(model) if model is not None else resources.files("qwen_whisper_compat") / SILERO_MODEL
            data = source.read_bytes()
            self._session: Any = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # OSError, or onnxruntime's own Fail/InvalidProtobuf types
            raise SileroUnavailableError(f"onnxruntime cannot load the Silero VAD model {name}: {e}") from e
        inputs = {i.name for i in self._session.get_inputs()}
        if inputs != {"input", "h", "c"}:
            raise SileroUnavailableError(f"{name} is not a Silero sequence model (inputs {sorted(inputs)})")

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability of each started 512-sample window of 16 kHz ``audio`` (float32, one per window).

        Window ``i`` covers samples ``[512 * i, 512 * (i + 1))``; the last one is zero-padded.
        """
        samples = _as_mono(audio)
        n = -(-samples.size // SILERO_WINDOW)
        # 64 zeros, the audio, zeros to whole windows: window i with its context is padded[512 i : 512 i + 576]
        padded = np.zeros(_SILERO_CONTEXT + n * SILERO_WINDOW, dtype=np.float32)
        padded[_SILERO_CONTEXT : _SILERO_CONTEXT + samples.size] = samples
        windows = np.lib.stride_tricks.sliding_window_view(padded, _SILERO_CONTEXT + SILERO_WINDOW)[::SILERO_WINDOW]
        h = c = np.zeros(_SILERO_STATE, dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        for lo in range(0, n, _SILERO_BLOCK):
            block = np.ascontiguousarray(windows[lo : lo + _SILERO_BLOCK])
            probs, h, c = self._session.run(["speech_probs", "hn", "cn"], {"input": block, "h": h, "c": c})
            assert isinstance(probs, np.ndarray) and probs.size == block.shape[0]
            out[lo : lo + block.shape[0]] = probs.reshape(-1)
        return out


class _SharedSilero:
    """The process-wide :class:`SileroVad`, created on first use under a lock; a failure is remembered."""

    def __init__(self, model: str | os.PathLike[str] | None = None) -> None:
        self._model_path = model
        self._lock = threading.Lock()
        self._vad: SileroVad | None = None
        self._error: SileroUnavailableError | None = None

    def get(self) -> SileroVad | None:
        """The session, or ``None`` (after one warning) when it cannot be created."""
        with self._lock:
            if self._vad is None and self._error is None:
                try:
                    self._vad = SileroVad(self._model_path)
                except SileroUnavailableError as e:
                    self._error = e
                    logger.warning("%s; using the energy VAD instead (it cannot tell music from speech)", e)
            return self._vad


_SHARED = _SharedSilero()


def shared_silero_vad() -> SileroVad:
    """The process-wide Silero session that :func:`get_speech_timestamps` uses (created on first call).

    Raises:
        SileroUnavailableError: It cannot be created (see :class:`SileroVad`).
    """
    vad = _SHARED.get()
    if vad is None:
        error = _SHARED._error
        raise SileroUnavailableError(str(error)) from error
    return vad


def timestamps_from_probabilities(
    probabilities: np.ndarray,
    options: VadOptions,
    num_samples: int,
    sampling_rate: int = 16000,
    window: int = SILERO_WINDOW,
) -> list[dict[str, int]]:
    """Speech regions (samples) from per-window speech probabilities, as faster-whisper 1.2.1 computes them.

    A line-for-line port of the loop in faster-whisper's ``get_speech_timestamps`` (itself adapted from
    silero-vad): speech starts at a window at or above ``threshold`` and ends after ``min_silence_duration_ms``
    below ``neg_threshold``; a region longer than ``max_speech_duration_s`` (less one window and twice the
    padding) is cut at its last silence longer than 98 ms, or at the limit; a region open at the end of the
    audio ends there; regions not longer than ``min_speech_duration_ms`` are dropped; then the padding, whose
    rule is :func:`_pad`'s.

    Args:
        probabilities: One value per window; window ``i`` starts at sample ``window * i``.
        options: Thresholds and durations.
        num_samples: Length of the audio.
        sampling_rate: Sample rate, to convert the options' durations.
        window: Samples per window.
    """
    threshold, neg_threshold = options.threshold, options.effective_neg_threshold
    min_speech = sampling_rate * options.min_speech_duration_ms / 1000
    pad = sampling_rate * options.speech_pad_ms / 1000
    max_speech = sampling_rate * options.max_speech_duration_s - window - 2 * pad
    min_silence = sampling_rate * options.min_silence_duration_ms / 1000
    min_silence_at_max_speech = sampling_rate * 98 / 1000
    speeches: list[dict[str, int]] = []
    current: dict[str, int] = {}
    triggered = False
    temp_end = prev_end = next_start = 0  # possible end (in a silence), last usable split, restart after it
    for i, prob in enumerate(np.asarray(probabilities, dtype=np.float32).reshape(-1).tolist()):
        position = window * i
        if prob >= threshold and temp_end:
            temp_end = 0
            if next_start < prev_end:
                next_start = position
        if prob >= threshold and not triggered:
            triggered = True
            current["start"] = position
            continue
        if triggered and position - current["start"] > max_speech:
            if prev_end:
                current["end"] = prev_end
                speeches.append(current)
                current = {}
                if next_start < prev_end:  # silence since the split point, and no speech yet
                    triggered = False
                else:
                    current["start"] = next_start
                prev_end = next_start = temp_end = 0
            else:
                current["end"] = position
                speeches.append(current)
                current = {}
                prev_end = next_start = temp_end = 0
                triggered = False
                continue
        if prob < neg_threshold and triggered:
            if not temp_end:
                temp_end = position
            if position - temp_end > min_silence_at_max_speech:
                prev_end = temp_end
            if position - temp_end < min_silence:
                continue
            current["end"] = temp_end
            if current["end"] - current["start"] > min_speech:
                speeches.append(current)
            current = {}
            prev_end = next_start = temp_end = 0
            triggered = False
    if current and num_samples - current["start"] > min_speech:
        current["end"] = num_samples
        speeches.append(current)
    return _pad([(r["start"], r["end"]) for r in speeches], int(pad), num_samples)  # faster-whisper's padding


def frame_hop(sampling_rate: int) -> int:
    """Samples per energy-detector frame (10 ms): the scores and the timestamps must agree on it."""
    return max(1, round(sampling_rate * FRAME_SECONDS))


def frame_scores(audio: np.ndarray, sampling_rate: int = 16000) -> np.ndarray:
    """Per-frame speech score in [0, 1], one per started 10 ms of ``audio`` (float32).

    The score is the frame's speech-band level in dB above the local noise floor, divided by 16 dB and
    clipped; see the module docstring.
    """
    samples = _as_mono(audio)
    hop = frame_hop(sampling_rate)
    if samples.size == 0:
        return np.zeros(0, dtype=np.float32)
    level = _frame_levels_db(samples, hop, sampling_rate)
    floor = np.maximum(_noise_floor_db(level), _MIN_FLOOR_DB)
    scores: np.ndarray = np.clip((level - floor) / _SCORE_RANGE_DB, 0.0, 1.0).astype(np.float32)
    return scores


def timestamps_from_scores(
    scores: np.ndarray,
    options: VadOptions,
    frame_samples: int,
    num_samples: int,
    sampling_rate: int = 16000,
) -> list[dict[str, int]]:
    """Speech regions (samples) from per-frame scores or probabilities, post-processed as in the module docstring.

    Args:
        scores: One value in [0, 1] per frame; frame ``i`` covers samples ``[i * frame_samples,
            (i + 1) * frame_samples)``.
        options: Thresholds and durations.
        frame_samples: Samples per frame.
        num_samples: Length of the audio; regions are clipped to it.
        sampling_rate: Sample rate, to convert the options' durations.
    """
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    starts, ends = _hysteresis_runs(scores, options.threshold, options.effective_neg_threshold)
    if starts.size == 0:
        return []
    min_silence = math.ceil(round(options.min_silence_duration_ms * sampling_rate / 1000 / frame_samples, 6))
    pad = int(sampling_rate * options.speech_pad_ms / 1000)
    max_samples = sampling_rate * options.max_speech_duration_s - 2 * pad
    max_frames = max(1, int(max_samples / frame_samples)) if math.isfinite(max_samples) else None
    breaks = np.flatnonzero(starts[1:] - ends[:-1] >= min_silence) + 1
    regions: list[tuple[int, int]] = []
    for group in np.split(np.arange(starts.size), breaks):
        regions.extend(_split_long(starts[group], ends[group], scores, max_frames))
    min_speech = options.min_speech_duration_ms / 1000 * sampling_rate
    sample_regions = [
        (s * frame_samples, min(e * frame_samples, num_samples))
        for s, e in regions
        if min(e * frame_samples, num_samples) - s * frame_samples > min_speech
    ]
    return _pad(sample_regions, pad, num_samples)


def collect_chunks(audio: np.ndarray, chunks: Sequence[Mapping[str, int]]) -> np.ndarray:
    """The samples of ``chunks`` (``{"start", "end"}`` dicts, in order) concatenated; empty when there are none.

    Raises:
        ValueError: The chunks overlap, are out of order, or reach outside ``audio``.
    """
    samples = _as_mono(audio)
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


def _as_mono(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"audio must be 1-D mono samples, got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"audio must hold float samples in [-1, 1], got dtype {samples.dtype}")
    return samples


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


def _frame_levels_db(samples: np.ndarray, hop: int, sampling_rate: int) -> np.ndarray:
    """Speech-band power (200-4000 Hz) of a 20 ms Hann window centred on each frame, in dB (float64)."""
    n_frames = -(-samples.size // hop)
    window = 2 * hop
    padded = np.pad(samples.astype(np.float32, copy=False), (hop // 2, n_frames * hop - samples.size + window))
    frames = np.lib.stride_tricks.sliding_window_view(padded, window)[::hop][:n_frames]
    taper = np.hanning(window).astype(np.float32)
    freqs = np.fft.rfftfreq(window, 1.0 / sampling_rate)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
    scale = 2.0 / float(taper @ taper) / window  # a full-scale sine in the band reads about 0 dB
    power = np.empty(n_frames, dtype=np.float64)
    for lo in range(0, n_frames, _FFT_BATCH):  # batches bound the memory for long recordings
        spectrum = np.fft.rfft(frames[lo : lo + _FFT_BATCH] * taper, axis=1)[:, band]
        power[lo : lo + spectrum.shape[0]] = (spectrum.real**2 + spectrum.imag**2).sum(axis=1) * scale
    with np.errstate(divide="ignore"):
        level: np.ndarray = np.maximum(10.0 * np.log10(power), _SILENCE_DB)
    return level


def _noise_floor_db(level: np.ndarray) -> np.ndarray:
    """The higher of the minimum level in the 0.5 s before each frame and in the 0.5 s after it."""
    reach = _FLOOR_REACH_FRAMES
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(level, reach, mode="edge"), reach + 1)
    lowest = windows.min(axis=1)  # lowest[i] covers padded frames i..i+reach, i.e. frames i-reach..i
    floor: np.ndarray = np.maximum(lowest[: level.size], lowest[reach:])
    return floor


def _hysteresis_runs(scores: np.ndarray, threshold: float, neg_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Runs (start, end frame) of scores >= ``neg_threshold`` that hold a score >= ``threshold``."""
    above = np.concatenate([[False], scores >= neg_threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    starts, ends = edges[0::2], edges[1::2]
    strong = np.concatenate([[0], np.cumsum(scores >= threshold)])
    keep = strong[ends] > strong[starts]
    return starts[keep].astype(np.int64), ends[keep].astype(np.int64)


def _split_long(
    starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, max_frames: int | None
) -> list[tuple[int, int]]:
    """One merged region (its runs ``starts``/``ends``) as pieces of at most ``max_frames`` frames.

    A piece that is too long is split at its longest gap between runs; a single run that is too long is cut
    at its lowest-scoring frame in the second half of the allowed length.
    """
    start, end = int(starts[0]), int(ends[-1])
    if max_frames is None or end - start <= max_frames:
        return [(start, end)]
    if starts.size > 1:
        k = int(np.argmax(starts[1:] - ends[:-1])) + 1
        return _split_long(starts[:k], ends[:k], scores, max_frames) + _split_long(
            starts[k:], ends[k:], scores, max_frames
        )
    pieces = []
    while end - start > max_frames:
        lo = start + max(1, max_frames // 2)
        cut = lo + int(np.argmin(scores[lo : start + max_frames + 1]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _pad(regions: list[tuple[int, int]], pad: int, num_samples: int) -> list[dict[str, int]]:
    """Widen each region by ``pad`` samples, sharing gaps shorter than ``2 * pad`` half and half."""
    out = [{"start": s, "end": e} for s, e in regions]
    for i, region in enumerate(out):
        if i == 0:
            region["start"] = max(0, region["start"] - pad)
        if i + 1 < len(out):
            share = min(pad, (out[i + 1]["start"] - region["end"]) // 2)
            region["end"] += share
            out[i + 1]["start"] -= share
        else:
            region["end"] = min(num_samples, region["end"] + pad)
    return out
