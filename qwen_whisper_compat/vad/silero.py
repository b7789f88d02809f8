"""Silero VAD v6.2 (vendored ONNX, MIT; see ``assets/silero_vad/NOTICE``) in onnxruntime: speech probabilities
per 32 ms window, and faster-whisper 1.2.1's post-processing that turns them into speech regions."""

from __future__ import annotations

import logging
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.speech import SpeechGate
from qwen_whisper_compat.errors import SileroUnavailableError
from qwen_whisper_compat.vad.common import VadOptions, as_mono, pad_regions

logger = logging.getLogger("qwen_whisper_compat.vad")

#: The vendored Silero model, inside this package.
SILERO_MODEL = "assets/silero_vad/silero_vad_16k_sequence.onnx"
SILERO_SAMPLING_RATE = 16000
SILERO_WINDOW = 512  # samples per speech probability (32 ms)
_SILERO_CONTEXT = 64  # samples before each window that the model reads with it
_SILERO_STATE = (1, 1, 128)  # LSTM h and c
_SILERO_BLOCK = 2048  # windows (65 s) per session call: bounds memory, as fast as larger blocks


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
        samples = as_mono(audio)
        n = -(-samples.size // SILERO_WINDOW)
        h = c = np.zeros(_SILERO_STATE, dtype=np.float32)
        out = np.empty(n, dtype=np.float32)
        for lo in range(0, n, _SILERO_BLOCK):
            count = min(_SILERO_BLOCK, n - lo)
            # the block's windows with their 64 samples of context (zeros before the audio and after its end):
            # window lo + j is span[512 j : 512 j + 576]. Built per block, so no padded copy of a long input.
            first = lo * SILERO_WINDOW - _SILERO_CONTEXT
            span = np.zeros(_SILERO_CONTEXT + count * SILERO_WINDOW, dtype=np.float32)
            piece = samples[max(first, 0) : first + span.size]
            span[max(-first, 0) : max(-first, 0) + piece.size] = piece
            block = np.ascontiguousarray(
                np.lib.stride_tricks.sliding_window_view(span, _SILERO_CONTEXT + SILERO_WINDOW)[::SILERO_WINDOW]
            )
            probs, h, c = self._session.run(["speech_probs", "hn", "cn"], {"input": block, "h": h, "c": c})
            assert isinstance(probs, np.ndarray) and probs.size == count
            out[lo : lo + count] = probs.reshape(-1)
        return out

    def stream(self) -> SileroStream:
        """A stateful detector for audio that arrives in pieces (see :class:`SileroStream`)."""
        return SileroStream(self._session)


class SileroStream:
    """Silero VAD over a live stream: :meth:`feed` takes samples of any length and returns the speech
    probability of every 512-sample window completed so far, carrying the LSTM state and the 64 samples of
    context from one call to the next, so the probabilities equal those of :meth:`SileroVad.probabilities`
    over the whole stream (to float rounding). One instance per stream; the session is shared.
    """

    #: Samples per probability.
    window = SILERO_WINDOW

    def __init__(self, session: Any) -> None:
        self._session = session
        self._h = np.zeros(_SILERO_STATE, dtype=np.float32)
        self._c = np.zeros(_SILERO_STATE, dtype=np.float32)
        self._buffer = np.zeros(_SILERO_CONTEXT, dtype=np.float32)  # context, then samples not yet windowed

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of the windows that ``samples`` complete (possibly none)."""
        buffer = np.concatenate([self._buffer, as_mono(samples)])
        n = (buffer.size - _SILERO_CONTEXT) // SILERO_WINDOW
        if n == 0:
            self._buffer = buffer
            return np.zeros(0, dtype=np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(buffer, _SILERO_CONTEXT + SILERO_WINDOW)[::SILERO_WINDOW][:n]
        out = np.empty(n, dtype=np.float32)
        for lo in range(0, n, _SILERO_BLOCK):
            block = np.ascontiguousarray(windows[lo : lo + _SILERO_BLOCK])
            probs, self._h, self._c = self._session.run(
                ["speech_probs", "hn", "cn"], {"input": block, "h": self._h, "c": self._c}
            )
            out[lo : lo + block.shape[0]] = np.asarray(probs).reshape(-1)
        self._buffer = buffer[n * SILERO_WINDOW :].copy()
        return out


class SharedSilero:
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

    @property
    def error(self) -> SileroUnavailableError | None:
        """Why the session could not be created (``None`` while it could, or before the first try)."""
        return self._error


def timestamps_from_probabilities(
    probabilities: np.ndarray,
    options: VadOptions,
    num_samples: int,
    sampling_rate: int = 16000,
    window: int = SILERO_WINDOW,
) -> list[dict[str, int]]:
    """Speech regions (samples) from per-window speech probabilities, as faster-whisper 1.2.1 computes them.

    faster-whisper's ``get_speech_timestamps`` loop (itself adapted from silero-vad), step for step, on the
    package's one speech/silence rule (:class:`~qwen_whisper_compat.engine.speech.SpeechGate`): speech starts
    at a window at or above ``threshold`` and ends after ``min_silence_duration_ms`` below ``neg_threshold``;
    a region longer than ``max_speech_duration_s`` (less one window and twice the padding) is cut at its last
    silence longer than 98 ms, or at the limit; a region open at the end of the audio ends there; regions not
    longer than ``min_speech_duration_ms`` are dropped; then the padding, whose rule is
    :func:`.common.pad_regions`'s.

    Args:
        probabilities: One value per window; window ``i`` starts at sample ``window * i``.
        options: Thresholds and durations.
        num_samples: Length of the audio.
        sampling_rate: Sample rate, to convert the options' durations.
        window: Samples per window.
    """
    min_speech = sampling_rate * options.min_speech_duration_ms / 1000
    pad = sampling_rate * options.speech_pad_ms / 1000
    max_speech = sampling_rate * options.max_speech_duration_s - window - 2 * pad
    min_silence = sampling_rate * options.min_silence_duration_ms / 1000
    min_silence_at_max_speech = sampling_rate * 98 / 1000
    # faster-whisper counts a silence to the start of the window it looks at, the gate to its end
    gate = SpeechGate(options.threshold, options.effective_neg_threshold, window, min_silence + window)
    speeches: list[tuple[int, int]] = []
    prev_end: int | None = None  # the start of the last silence longer than 98 ms: where a long region splits
    next_start: int | None = None  # where speech resumed after it
    for i, prob in enumerate(np.asarray(probabilities, dtype=np.float32).reshape(-1).tolist()):
        position = window * i
        onset = gate.onset(prob, position)
        if onset is not None and onset.pause_from is None:
            continue  # speech starts
        if onset is not None and prev_end is not None and (next_start is None or next_start < prev_end):
            next_start = position
        if gate.in_speech and position - gate.start > max_speech:
            if prev_end is not None:
                speeches.append((gate.start, prev_end))
                if next_start is None or next_start < prev_end:  # silence since the split point, no speech yet
                    gate.stop()
                else:
                    gate.restart(next_start)
                prev_end = next_start = None
            else:
                speeches.append((gate.start, position))
                gate.stop()
                prev_end = next_start = None
                continue
        start = gate.start
        end = gate.offset(prob, position)
        if end is not None:
            if end - start > min_speech:
                speeches.append((start, end))
            prev_end = next_start = None
        elif (
            gate.silence_from is not None
            and prob < gate.neg_threshold  # (faster-whisper looks at silences only in windows below it)
            and position - gate.silence_from > min_silence_at_max_speech
        ):
            prev_end = gate.silence_from
    if gate.in_speech and num_samples - gate.start > min_speech:
        speeches.append((gate.start, num_samples))
    return pad_regions(speeches, int(pad), num_samples)  # faster-whisper's padding
