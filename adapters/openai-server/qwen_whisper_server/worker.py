"""One model, one transcription at a time: a single worker thread behind a bounded admission count.

This module owns running blocking inference off the event loop and refusing work when the queue is full;
it must not know about HTTP or response formats.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from qwen_whisper_compat import Whisper, load_audio
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.results import ResultDict
from qwen_whisper_server.schema import TranscriptionRequest

logger = logging.getLogger("qwen_whisper_server.worker")

T = TypeVar("T")


class QueueFull(Exception):
    """Every slot is taken; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the transcription queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class Worker:
    """Runs transcriptions on one shared model, one at a time, in a dedicated thread.

    ``max_queue`` requests may wait behind the one being transcribed; one more is refused with
    :class:`QueueFull`. Must be used from a single event loop (the counters are not locked).

    Args:
        model: The model every request uses; the caller keeps ownership (and closes it).
        max_queue: How many requests may wait behind the running one (0: none).
    """

    def __init__(self, model: Whisper, max_queue: int) -> None:
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        self.model = model
        self.max_queue = max_queue
        self.completed = 0
        self._admitted = 0
        self._average_seconds = 1.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen-whisper-server")

    @property
    def running(self) -> int:
        """Transcriptions in progress (0 or 1)."""
        return min(self._admitted, 1)

    @property
    def waiting(self) -> int:
        """Admitted requests not yet started."""
        return max(self._admitted - 1, 0)

    async def transcribe(self, audio: Any, request: TranscriptionRequest) -> tuple[ResultDict, float]:
        """Decode ``audio`` (bytes or a binary file object) and transcribe it.

        Returns:
            Whisper's result dict and the duration of the audio in seconds.

        Raises:
            QueueFull: ``max_queue`` requests are already waiting.
            AudioLoadError: The audio cannot be decoded.
            UnsupportedOptionError: The model cannot honour an option (a language it lacks, ...).
        """
        return await self.submit(lambda: self._transcribe(audio, request))

    async def submit(self, job: Callable[[], T]) -> T:
        """Run ``job`` in the worker thread once the jobs admitted before it are done.

        Raises:
            QueueFull: ``max_queue`` jobs are already waiting.
        """
        if self._admitted > self.max_queue:
            raise QueueFull(max(1, math.ceil(self._average_seconds)))
        self._admitted += 1
        loop = asyncio.get_running_loop()
        try:
            future = self._executor.submit(self._timed, job)
        except BaseException:
            self._admitted -= 1
            raise
        # release the slot when the job really ends (or is cancelled before it starts), not when the
        # awaiting request goes away
        future.add_done_callback(lambda _: _call_soon(loop, self._release))
        return await asyncio.wrap_future(future)

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` in the worker thread after the jobs submitted before it, without taking a queue slot:
        the steps of a live session, whose number is bounded by the sessions themselves."""
        return await asyncio.wrap_future(self._executor.submit(job))

    def close(self) -> None:
        """Finish the running job, drop the waiting ones and stop the thread."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _release(self) -> None:
        self._admitted -= 1

    def _timed(self, job: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return job()
        finally:
            elapsed = time.perf_counter() - start
            self._average_seconds = 0.7 * self._average_seconds + 0.3 * elapsed
            self.completed += 1

    def _transcribe(self, audio: Any, request: TranscriptionRequest) -> tuple[ResultDict, float]:
        samples = load_audio(audio)
        duration = len(samples) / SAMPLE_RATE
        start = time.perf_counter()
        result = self.model.transcribe(samples, **request.transcribe_options())
        logger.info(
            "transcribed %.1f s of audio in %.2f s (%s, %d segments)",
            duration, time.perf_counter() - start, request.response_format, len(result["segments"]),
        )  # fmt: skip
        return result, duration


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop has closed: the server is shutting down and nobody counts any more
        pass


__all__ = ["QueueFull", "Worker"]
