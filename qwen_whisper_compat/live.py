"""The live half of the seam: a stream of audio in, partial texts and final subtitle segments out.

:meth:`Recognizer.stream <qwen_whisper_compat.recognizer.Recognizer.stream>` opens a :class:`LiveStream`
over the engine's live session (:mod:`.engine.live`), which turns the engine's events into
:class:`StreamEvent` objects whose segments are :class:`~.shaping.SegmentInfo`; the whisper face
(``model.stream()``), the faster-whisper face (``WhisperModel.stream()``), ``qwen-whisper-live`` and the host
adapters get the same events with the segments in their own shape (see :mod:`.streaming`). A final is cut into
subtitle-sized segments by the offline rules (the recognizer's own shaping: limits, no-speech dropping,
post-processors).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

import numpy as np

from qwen_whisper_compat.engine.live import Final, LiveEvent, LiveSession, LiveStats, Partial
from qwen_whisper_compat.engine.types import ChunkResult
from qwen_whisper_compat.errors import AudioLoadError, UnsupportedOptionError
from qwen_whisper_compat.shaping import SegmentInfo, language_code

if TYPE_CHECKING:
    from qwen_whisper_compat.recognizer import RunOptions

__all__ = ["LiveStats", "LiveStream", "StreamEvent", "StreamSlots"]

S = TypeVar("S")

#: Shapes an engine final into subtitle-sized segments (the recognizer's offline rules).
Shape = Callable[[ChunkResult, "RunOptions"], Iterator[SegmentInfo]]


@dataclass(frozen=True)
class StreamEvent(Generic[S]):
    """One event of a live stream."""

    #: ``"partial"``: the open segment's text so far (replaced by the next event of the same ``index``);
    #: ``"final"``: a closed segment, never revised.
    type: Literal["partial", "final"]
    #: The stream's segment the event belongs to.
    index: int
    #: Seconds of the stream: a partial spans its segment up to the audio heard; finals tile the stream.
    start: float
    end: float
    text: str
    #: Whisper code of the language, ``""`` while unknown.
    language: str
    #: A final's subtitle-sized segments (whisper dicts, or faster-whisper ``Segment`` objects); a final of
    #: silence has none.
    segments: list[S] = field(default_factory=list)
    #: For a final: whether the voice activity detector heard speech in it (False: a span of silence).
    speech: bool = True



class LiveStream:
    """A live transcription in progress: :meth:`feed` samples, read updates, :meth:`finish`.

    A stream's calls are serialised by its own lock, so a producer thread may feed while another thread
    finishes; streams open at once on one model (and offline calls on it) take turns on its decoder inside
    the engine, live steps first.
    """

    def __init__(self, session: LiveSession, shape: Shape, options: RunOptions, on_close: Callable[[], None]) -> None:
        self._session, self._shape, self._options = session, shape, options
        self._lock = threading.RLock()
        self._on_close = on_close
        self._closed = False

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._session.position

    @property
    def open_speech(self) -> tuple[int, float] | None:
        """The open segment's index and start (seconds) once it holds speech, else ``None``."""
        return self._session.open_speech

    @property
    def stats(self) -> LiveStats:
        """The engine session's counts and times (:class:`~.engine.live.LiveStats`)."""
        return self._session.stats

    def feed(self, samples: np.ndarray) -> list[StreamEvent[SegmentInfo]]:
        """Add 16 kHz mono float32 samples; the updates they cause, in order.

        Raises:
            AudioLoadError: Samples that are not finite floats of one channel, or a finished or closed stream.
        """
        with self._lock:
            if self._closed:
                raise AudioLoadError("this live stream is closed: open a new stream for more audio")
            return [self._update(e) for e in self._session.feed(samples)]

    def finish(self) -> list[StreamEvent[SegmentInfo]]:
        """End the stream: the last segment's final (no update for a stream that got no audio, or a closed one)."""
        with self._lock:
            if self._closed:
                return []
            updates = [self._update(e) for e in self._session.finish()]
        self.close()
        return updates

    def close(self) -> None:
        """Let the model serve another stream (idempotent); audio not finished is dropped. Waits for a
        call in progress on another thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_close()

    def _update(self, event: LiveEvent) -> StreamEvent[SegmentInfo]:
        if isinstance(event, Partial):
            return StreamEvent("partial", event.index, event.start, event.end, event.text, language_code(event.language))
        assert isinstance(event, Final)
        segments = list(self._shape(event.chunk, self._options)) if event.speech else []
        return StreamEvent(
            "final", event.index, event.start, event.end, "".join(s.text for s in segments).strip(),
            language_code(event.chunk.language), segments, event.speech,
        )  # fmt: skip



class StreamSlots:
    """How many live streams are open on one model, and how many may be (1 unless raised). Each open stream
    holds one or two KV sequences of the decoder (about 60 MB each for the 0.6B)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._limit = 1

    @property
    def limit(self) -> int:
        """Streams that may be open at once."""
        return self._limit

    @limit.setter
    def limit(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UnsupportedOptionError(f"max_live_streams must be a whole number >= 1, got {n!r}")
        self._limit = n

    @property
    def open(self) -> int:
        """Streams open now."""
        return self._open

    def take(self) -> None:
        """Count one more open stream.

        Raises:
            UnsupportedOptionError: :attr:`limit` streams are open already.
        """
        with self._lock:
            n = self._limit
            if self._open >= n:
                raise UnsupportedOptionError(
                    f"this model is already transcribing {n} live stream{'s' if n > 1 else ''} (max_live_streams="
                    f"{n}): finish or close one first, or raise model.max_live_streams"
                )
            self._open += 1

    def give_back(self) -> None:
        """A stream closed."""
        with self._lock:
            self._open -= 1
