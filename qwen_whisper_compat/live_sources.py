"""Where live audio comes from: the microphone, a file played at real-time pace, raw PCM from a pipe.

Each source is an iterable of 16 kHz mono float32 blocks fed by a thread of its own, so audio keeps being
taken while the transcriber works: one iteration step returns everything that arrived since the last one
(a transcriber that falls behind gets larger blocks, and skips partials rather than dropping audio).
``close()`` stops the thread (the stream's ``events()`` calls it when the consumer stops reading).
"""

from __future__ import annotations

import logging
import os
import queue
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import numpy as np

from qwen_whisper_compat.errors import AudioLoadError, MissingDependencyError
from qwen_whisper_compat.pcm import PcmConverter

logger = logging.getLogger("qwen_whisper_compat.live")

SAMPLE_RATE = 16000
_END = object()


class BlockSource:
    """Blocks put by a producer (a thread, or a microphone's callback), taken in bulk by one consumer.

    Args:
        produce: Runs on the source's thread with the source as argument and returns when the audio ends
            or :attr:`stopping` is set; ``None`` when something else calls :meth:`put` (a callback).
        on_close: Called once by :meth:`close` (stops a microphone).
    """

    def __init__(self, produce: Callable[[BlockSource], None] | None = None, on_close: Callable[[], None] | None = None) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self.stopping = threading.Event()
        self._on_close = on_close
        self._closed = False
        self._thread: threading.Thread | None = None
        if produce is not None:
            self._thread = threading.Thread(target=self._run, args=(produce,), name="qwc-live-source", daemon=True)
            self._thread.start()

    def _run(self, produce: Callable[[BlockSource], None]) -> None:
        try:
            produce(self)
        except BaseException as e:  # handed to the consumer, which raises it
            self._queue.put(e)
        finally:
            self._queue.put(_END)

    def put(self, block: np.ndarray) -> None:
        """Add a block (float32 samples); ignored once the source is closing."""
        if not self.stopping.is_set():
            self._queue.put(np.asarray(block, dtype=np.float32))

    def end(self) -> None:
        """No more blocks will come."""
        self._queue.put(_END)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
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
        self._queue.put(_END)  # wakes a consumer waiting for a block
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def realtime_file(
    path: str, block_seconds: float = 0.1, speed: float = 1.0, clock: Callable[[], float] = time.monotonic
) -> BlockSource:
    """A file decoded whole (any format PyAV reads), then played at ``speed`` times real time in blocks."""
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
    ``ffmpeg -i INPUT -f s16le -ar 16000 -ac 1 -`` writes it."""
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
    device: int | str | None = None, block_seconds: float = 0.1, input_stream: Callable[..., Any] | None = None
) -> BlockSource:
    """The microphone (PortAudio through ``sounddevice``, the ``[mic]`` extra), 16 kHz mono.

    Args:
        device: A sounddevice device index or name (default: the system's input).
        block_seconds: Length of the blocks the driver delivers.
        input_stream: ``sounddevice.InputStream`` or a stand-in with its signature (tests).

    Raises:
        MissingDependencyError: sounddevice is not installed.
        AudioLoadError: The device cannot be opened.
    """
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
    holder: dict[str, Any] = {}
    source = BlockSource(on_close=lambda: _stop(holder.get("stream")))

    def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            logger.warning("microphone: %s", status)
        source.put(np.asarray(indata, dtype=np.float32).reshape(frames, -1).mean(axis=1))

    try:
        stream = input_stream(
            samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=int(block_seconds * SAMPLE_RATE),
            device=device, callback=callback,
        )  # fmt: skip
        stream.start()
    except Exception as e:  # PortAudioError and friends
        raise AudioLoadError(f"cannot open the microphone {device if device is not None else '(default)'}: {e}") from e
    holder["stream"] = stream
    return source


def _stop(stream: Any) -> None:
    if stream is not None:
        try:
            stream.stop()
        finally:
            stream.close()
