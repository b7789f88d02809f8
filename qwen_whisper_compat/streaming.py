"""Live transcription for whisper and faster-whisper users: ``model.stream()``.

::

    import qwen_whisper_compat as whisper

    model = whisper.load_model("turbo")
    with model.stream(language="en") as stream:
        for event in stream.events(blocks):          # any iterable of 16 kHz float32 arrays
            if event.type == "partial":
                print("\\r" + event.text, end="")       # replaced by the next partial or final
            else:
                for segment in event.segments:       # whisper segment dicts (faster-whisper: Segment)
                    print(segment["start"], segment["end"], segment["text"])
    result = stream.result()                         # {"text", "segments", "language"}, for the writers

``stream.feed(samples)`` and ``stream.finish()`` do the same step by step. A stream holds only its open
segment; finals are never revised. One stream per loaded model at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import numpy as np

from qwen_whisper_compat import options as opts
from qwen_whisper_compat.live import LiveStats, LiveStream, StreamEvent
from qwen_whisper_compat.recognizer import LiveOptions, Recognizer, RunOptions
from qwen_whisper_compat.segments import SegmentLimits
from qwen_whisper_compat.shaping import SegmentInfo

S = TypeVar("S")

__all__ = ["Stream", "StreamEvent", "open_stream"]


class Stream(Generic[S]):
    """A live transcription in progress (see the module docstring)."""

    def __init__(self, live: LiveStream, shape: Callable[[int, SegmentInfo], S], first_id: int) -> None:
        self._live, self._shape, self._next_id = live, shape, first_id
        self._segments: list[S] = []
        self._language = ""

    def __enter__(self) -> Stream[S]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._live.position

    @property
    def open_speech(self) -> tuple[int, float] | None:
        """The open segment's index and start (seconds) once speech was heard in it (``None`` before, and
        in silence): where a host signals "speech started" before the first partial."""
        return self._live.open_speech

    @property
    def stats(self) -> LiveStats:
        """The engine's counts and times of this stream (partials, finals, rows kept in the KV cache, ...)."""
        return self._live.stats

    @property
    def segments(self) -> list[S]:
        """Every final segment so far, in order."""
        return list(self._segments)

    def feed(self, samples: np.ndarray) -> list[StreamEvent[S]]:
        """Add 16 kHz mono float32 samples (any length); the events they cause.

        Raises:
            AudioLoadError: Integer samples (divide 16-bit PCM by 32768), NaN or infinite values, more than
                one channel, or a finished stream.
        """
        return [self._event(u) for u in self._live.feed(samples)]

    def finish(self) -> list[StreamEvent[S]]:
        """End the stream: the last segment's final. Nothing for a stream that got no audio."""
        return [self._event(u) for u in self._live.finish()]

    def events(self, source: Iterable[np.ndarray]) -> Iterator[StreamEvent[S]]:
        """Feed every block of ``source`` and yield the events, then those of :meth:`finish`.

        Stopping the iteration early (``break``, an exception, closing the generator) closes the stream and
        the source (its ``close()``, if it has one: a microphone stops, a reader thread ends).
        """
        try:
            for block in source:
                yield from self.feed(block)
            yield from self.finish()
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()
            self.close()

    def close(self) -> None:
        """Release the model for another stream; audio not finished is dropped. Idempotent."""
        self._live.close()

    def result(self) -> dict[str, Any]:
        """The finals so far as whisper's result dict (``text``, ``segments``, ``language``), as the writers
        take it; for a faster-whisper stream the segments are its ``Segment`` objects."""
        texts = [s["text"] if isinstance(s, dict) else getattr(s, "text", "") for s in self._segments]
        return {"text": "".join(texts), "segments": self.segments, "language": self._language}

    def _event(self, update: StreamEvent[SegmentInfo]) -> StreamEvent[S]:
        shaped: list[S] = []
        for info in update.segments:
            shaped.append(self._shape(self._next_id, info))
            self._next_id += 1
        self._segments += shaped
        if update.language and not self._language:
            self._language = update.language
        return StreamEvent(
            update.type, update.index, update.start, update.end, update.text, update.language, shaped, update.speech
        )


def open_stream(
    recognizer: Recognizer,
    shape: Callable[[int, SegmentInfo], S],
    first_id: int,
    limits: SegmentLimits,
    *,
    language: str | None,
    initial_prompt: str | None,
    word_timestamps: bool,
    carry_context: bool = False,
    condition_on_previous_text: bool,
    temperature: float | Iterable[float],
    compression_ratio_threshold: float | None,
    logprob_threshold: float | None,
    no_speech_threshold: float | None,
    live: dict[str, Any],
) -> Stream[S]:
    """A :class:`Stream` over ``recognizer`` with whisper's decoding keywords (both faces call this)."""
    run = RunOptions(
        language=language,
        context=initial_prompt or "",
        carry_context=carry_context,
        carry_previous=condition_on_previous_text,
        temperatures=opts.temperatures(temperature),
        compression_ratio_threshold=compression_ratio_threshold,
        logprob_threshold=logprob_threshold,
        no_speech_threshold=no_speech_threshold,
        word_timestamps=word_timestamps,
        align_segments=False,
        limits=limits,
    )
    fields = {f.name for f in dataclasses.fields(LiveOptions)}
    unknown = sorted(set(live) - fields)
    if unknown:
        raise TypeError(f"stream() got unexpected keyword(s) {', '.join(unknown)}; live options are {', '.join(sorted(fields))}")
    return Stream(recognizer.stream(run, LiveOptions(**live)), shape, first_id)

