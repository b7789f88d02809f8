"""Where live audio comes from: the microphone, a file played at real-time pace, raw PCM from a pipe.

Each source is an iterable of 16 kHz mono float32 blocks fed by a thread of its own (or a sound card's
callback), so audio keeps being taken while the transcriber works: one iteration step returns everything
that arrived since the last one (a transcriber that falls behind gets larger blocks, and skips partials).
What waits for the transcriber is bounded (:data:`MAX_QUEUED_SECONDS`); past it a file or a pipe waits (it
loses nothing), and a microphone drops audio with a counted warning (its callback must never wait). See
:class:`BlockSource`. ``close()`` stops the thread (the stream's ``events()`` calls it when the consumer stops
reading).
"""

from __future__ import annotations

import collections
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal

import numpy as np

from qwen_whisper_compat.errors import AudioLoadError, MissingDependencyError
from qwen_whisper_compat.pcm import PcmConverter

logger = logging.getLogger("qwen_whisper_compat.live")

SAMPLE_RATE = 16000
#: The most audio that waits for the consumer of a source by default (seconds).
MAX_QUEUED_SECONDS = 30.0
_END = object()
_WAKE_SECONDS = 0.1  # a producer waiting for room looks at ``stopping`` at least this often

#: What :meth:`BlockSource.put` does with a block that does not fit: ``"block"`` waits for room (a reader that
#: can pause: a file, a pipe), ``"drop"`` drops it, counted, with a warning (a sound card's callback).
Policy = Literal["block", "drop"]


class BlockSource:
    """Blocks put by a producer (a thread, or a microphone's callback), taken in bulk by one consumer.

    At most ``max_seconds`` of audio waits for the consumer (one block larger than that is taken alone).
    A block that does not fit is handled by ``policy`` (see :data:`Policy`): ``"block"`` makes :meth:`put`
    wait until the consumer takes what waits, or the source closes; ``"drop"`` returns at once, adds the
    block's length to :attr:`dropped_seconds`, and logs one warning per run of dropped blocks.

    Args:
        produce: Runs on the source's thread with the source as argument and returns when the audio ends
            or :attr:`stopping` is set; ``None`` when something else calls :meth:`put` (a callback).
        on_close: Called once by :meth:`close` (stops a microphone).
        max_seconds: The most audio that waits for the consumer.
        policy: What a full source does with a block.
    """

    def __init__(
        self,
        produce: Callable[[BlockSource], None] | None = None,
        on_close: Callable[[], None] | None = None,
        *,
        max_seconds: float = MAX_QUEUED_SECONDS,
        policy: Policy = "block",
    ) -> None:
        if policy not in ("block", "drop"):
            raise ValueError(f"policy must be 'block' or 'drop', got {policy!r}")
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        self.policy: Policy = policy
        self.max_samples = max(1, int(max_seconds * SAMPLE_RATE))
        self.stopping = threading.Event()
        #: Samples dropped because the source was full (``"drop"`` policy).
        self.dropped_samples = 0
        self._items: collections.deque[object] = collections.deque()
        self._queued = 0  # samples waiting
        self._changed = threading.Condition()
        self._dropping = False  # the last block was dropped (one warning per run of them)
        self._on_close = on_close
        self._closed = False
        self._thread: threading.Thread | None = None
        if produce is not None:
            self._thread = threading.Thread(target=self._run, args=(produce,), name="qwc-live-source", daemon=True)
            self._thread.start()

    @property
    def dropped_seconds(self) -> float:
        """Audio dropped because the consumer was :attr:`max_samples` behind (``"drop"`` policy)."""
        return self.dropped_samples / SAMPLE_RATE

    def _run(self, produce: Callable[[BlockSource], None]) -> None:
        try:
            produce(self)
        except BaseException as e:  # noqa: BLE001 (handed to the consumer, which raises it)
            self._add(e)
        finally:
            self._add(_END)

    def put(self, block: np.ndarray) -> None:
        """Add a block (float32 samples); ignored once the source is closing. When the source is full, waits
        for room or drops the block, as :attr:`policy` says."""
        samples = np.asarray(block, dtype=np.float32)
        with self._changed:
            while not self.stopping.is_set() and self._queued and self._queued + samples.size > self.max_samples:
                if self.policy == "drop":
                    self._drop(samples.size)
                    return
                self._changed.wait(_WAKE_SECONDS)
            if self.stopping.is_set():
                return
            self._dropping = False
            self._items.append(samples)
            self._queued += samples.size
            self._changed.notify_all()

    def _drop(self, size: int) -> None:
        self.dropped_samples += size
        if not self._dropping:
            self._dropping = True
            logger.warning(
                "the transcriber is %.1f s behind the audio source: dropping audio until it catches up "
                "(%.1f s dropped so far)", self._queued / SAMPLE_RATE, self.dropped_seconds,
            )  # fmt: skip

    def end(self) -> None:
        """No more blocks will come."""
        self._add(_END)

    def _add(self, item: object) -> None:  # the end, or the producer's error: never bounded
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self._changed:
                while not self._items:
                    self._changed.wait()
                items = list(self._items)
                self._items.clear()
                self._queued = 0
                self._changed.notify_all()  # room for a waiting producer
            blocks = [i for i in items if isinstance(i, np.ndarray)]
            if blocks:
                yield np.concatenate(blocks)
            for item in items:
                if isinstance(item, BaseException):
                    raise item
            if any(item is _END for item in items):
                return

    def close(self) -> None:
        """Stop producing and wait (briefly) for the thread to end. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        if self._on_close is not None:
            self._on_close()
        self._add(_END)  # wakes a consumer waiting for a block, and a producer waiting for room
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def realtime_file(
    path: str, block_seconds: float = 0.1, speed: float = 1.0, clock: Callable[[], float] = time.monotonic
) -> BlockSource:
    """A file decoded whole (any format PyAV reads), then played at ``speed`` times real time in blocks
    (a transcriber ``MAX_QUEUED_SECONDS`` behind pauses the playing: the ``"block"`` policy)."""
    from qwen_whisper_compat.audio import load_audio

    audio = load_audio(path)
    block = max(1, int(block_seconds * SAMPLE_RATE))

    def produce(source: BlockSource) -> None:
        start = clock()
        for i in range(0, audio.size, block):
            due = start + (i + block) / SAMPLE_RATE / speed
            while not source.stopping.is_set() and (wait := due - clock()) > 0:
                source.stopping.wait(min(wait, 0.05))
            if source.stopping.is_set():
                return
            source.put(audio[i : i + block])

    return BlockSource(produce)


def pcm_stream(stream: BinaryIO | None = None, block_bytes: int = 6400) -> BlockSource:
    """Raw 16-bit little-endian mono 16 kHz PCM from a binary stream (default: standard input), as
    ``ffmpeg -i INPUT -f s16le -ar 16000 -ac 1 -`` writes it. A transcriber ``MAX_QUEUED_SECONDS`` behind
    stops the reading (the ``"block"`` policy), so the writer waits on the full pipe and nothing is lost."""
    stream = stream if stream is not None else sys.stdin.buffer
    try:
        fd: int | None = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    pollable = fd is not None and os.name != "nt"

    def produce(source: BlockSource) -> None:
        converter = PcmConverter(SAMPLE_RATE)  # carries an odd byte over to the next read
        while not source.stopping.is_set():
            if pollable:
                assert fd is not None
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, block_bytes)
            else:
                data = stream.read(block_bytes)
            if not data:
                return
            samples = converter.convert(data)
            if samples.size:
                source.put(samples)

    return BlockSource(produce)


def microphone(
    device: int | str | None = None,
    block_seconds: float = 0.1,
    input_stream: Callable[..., Any] | None = None,
    samplerate: float | None = None,
    max_seconds: float = MAX_QUEUED_SECONDS,
) -> BlockSource:
    """The microphone (PortAudio through ``sounddevice``, the ``[mic]`` extra), opened at the device's own
    rate and converted to 16 kHz mono. A transcriber ``max_seconds`` behind loses audio (the ``"drop"``
    policy of :class:`BlockSource`: the sound card's callback never waits).

    Args:
        device: A sounddevice device index or name (default: the system's input).
        block_seconds: Length of the blocks the driver delivers.
        input_stream: ``sounddevice.InputStream`` or a stand-in with its signature (tests).
        samplerate: The rate to open the device at (default: the device's default rate; 16 kHz for a
            stand-in ``input_stream``).
        max_seconds: The most audio that waits for the transcriber.

    Raises:
        MissingDependencyError: sounddevice is not installed.
        AudioLoadError: The device cannot be opened.
    """
    name = device if device is not None else "(default)"
    if input_stream is None:
        try:
            import sounddevice
        except ImportError as e:
            raise MissingDependencyError(
                f"the microphone needs sounddevice ({e}): pip install 'qwen-whisper-compat[mic]'"
            ) from e
        except OSError as e:  # sounddevice is there but PortAudio is not
            raise MissingDependencyError(f"sounddevice cannot load PortAudio ({e}): install libportaudio2") from e
        input_stream = sounddevice.InputStream
        if samplerate is None:
            try:
                samplerate = float(sounddevice.query_devices(device, "input")["default_samplerate"])
            except Exception as e:  # PortAudioError, ValueError: no such input device
                raise AudioLoadError(f"cannot open the microphone {name}: {e}") from e
    rate = round(samplerate) if samplerate is not None else SAMPLE_RATE
    try:
        converter = PcmConverter(rate)
    except AudioLoadError as e:
        raise AudioLoadError(f"cannot open the microphone {name}: {e}") from e
    holder: dict[str, Any] = {}
    source = BlockSource(on_close=lambda: _stop(holder.get("stream")), max_seconds=max_seconds, policy="drop")

    def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            logger.warning("microphone: %s", status)
        samples = converter.convert_samples(np.asarray(indata, dtype=np.float32).reshape(frames, -1).mean(axis=1))
        if samples.size:
            source.put(samples)

    try:
        stream = input_stream(
            samplerate=rate, channels=1, dtype="float32", blocksize=int(block_seconds * rate),
            device=device, callback=callback,
        )  # fmt: skip
        stream.start()
    except Exception as e:  # PortAudioError and friends
        raise AudioLoadError(f"cannot open the microphone {name}: {e}") from e
    holder["stream"] = stream
    return source


def _stop(stream: Any) -> None:
    if stream is not None:
        try:
            stream.stop()
        finally:
            stream.close()
