"""What the servers built on this package share (``qwen-whisper-server``, ``qwen-whisper-wyoming``; public, for
any host adapter that serves one model to many clients).

- :class:`BackgroundModel`: the model loaded on a thread of its own, so that a server binds its port first and
  answers "loading" while the model downloads, converts and loads.
- :class:`Admission`: one model thread; jobs admitted to it one at a time (or ``slots`` at a time) behind a
  bounded waiting queue; one more is refused with :class:`QueueFull`, which carries a retry-after estimate.
  Work that must not take a queue slot (the steps of a live session already admitted) runs beside it through
  :meth:`Admission.run`: the model schedules its decoder itself (live steps go between the chunks of an offline
  job, see ``qwen_whisper_compat.engine.turns``), so a live step never waits for a whole transcription.
- :func:`is_loopback`: whether a listening address is reachable only from this machine.

This module owns no protocol: HTTP status codes, Wyoming events and OpenAI error shapes are the adapters'. It
imports nothing heavy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Literal, Protocol, TypeVar

from qwen_whisper_compat.errors import QwenWhisperError

__all__ = ["Admission", "BackgroundModel", "LoadState", "ModelLoading", "QueueFull", "is_loopback"]

logger = logging.getLogger("qwen_whisper_compat.serving")

T = TypeVar("T")

#: Where a :class:`BackgroundModel` is: still loading, loaded, or failed to load.
LoadState = Literal["loading", "ready", "failed"]


class QueueFull(QwenWhisperError, RuntimeError):
    """Every slot is taken and the waiting queue is full; try again after :attr:`retry_after` seconds."""

    def __init__(self, retry_after: int, running: int, waiting: int) -> None:
        super().__init__(
            f"the server is busy: {running} job(s) running and {waiting} waiting, its limit; retry after "
            f"{retry_after} s"
        )
        #: Seconds until a place is likely free (the recent average time a job holds its slot; at least 1).
        self.retry_after = retry_after
        self.running = running
        self.waiting = waiting


class ModelLoading(QwenWhisperError, RuntimeError):
    """The model is still being downloaded, converted or loaded; the request can be made again shortly."""


class _Closable(Protocol):
    def close(self) -> None: ...


M = TypeVar("M", bound=_Closable)


class BackgroundModel(Generic[M]):
    """A model loaded on a daemon thread of its own, started by :meth:`start` (after the server has bound).

    Args:
        load: Loads and returns the model (``lambda: qwen_whisper_compat.load_model(...)``); whatever it raises
            is the failure.
        name: What the model is called in log lines and errors.
    """

    def __init__(self, load: Callable[[], M], name: str) -> None:
        self.name = name
        self._load = load
        #: Resolves to the model, or to the exception the load raised.
        self.future: Future[M] = Future()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def loaded(cls, model: M, name: str) -> BackgroundModel[M]:
        """An already loaded model, in this class's shape (for an application built around a loaded model)."""
        done = cls(lambda: model, name)
        done.future.set_result(model)
        return done

    def start(self, on_done: Callable[[BackgroundModel[M]], None] | None = None) -> None:
        """Start loading (once). ``on_done(self)`` is called on the loading thread when the load has ended,
        loaded or failed (see :attr:`state`); an exception it raises is logged."""
        with self._lock:
            if self._thread is not None or self.future.done():
                raise RuntimeError(f"the model {self.name!r} is already loading or loaded")
            self._thread = threading.Thread(target=self._run, args=(on_done,), name=f"load {self.name}", daemon=True)
        self._thread.start()

    @property
    def state(self) -> LoadState:
        """``"loading"`` (also before :meth:`start`), ``"ready"`` or ``"failed"``."""
        if not self.future.done():
            return "loading"
        return "failed" if self.future.exception() is not None else "ready"

    @property
    def error(self) -> BaseException | None:
        """What the load raised, when it failed."""
        return self.future.exception() if self.future.done() else None

    @property
    def model(self) -> M:
        """The loaded model.

        Raises:
            ModelLoading: The model is not loaded yet, or its load failed (chained to the load's error).
        """
        if not self.future.done():
            raise ModelLoading(f"the model {self.name!r} is still loading; try again shortly")
        error = self.future.exception()
        if error is not None:
            raise ModelLoading(f"the model {self.name!r} could not be loaded: {error}") from error
        return self.future.result()

    def close(self) -> None:
        """Close the model: now if it is loaded, else as soon as a load still running ends."""
        with self._lock:
            self._closed = True
            loaded = self.future.done() and self.future.exception() is None
        if loaded:
            self.future.result().close()

    def _run(self, on_done: Callable[[BackgroundModel[M]], None] | None) -> None:
        if not self.future.set_running_or_notify_cancel():  # from now on nobody can cancel it (nor the load)
            return
        start = time.perf_counter()
        try:
            model = self._load()
        except BaseException as e:  # noqa: BLE001  (every failure is the load's outcome, reported through the future)
            self.future.set_exception(e)
        else:
            with self._lock:
                closed = self._closed
                self.future.set_result(model)
            logger.debug("loaded %s in %.1f s", self.name, time.perf_counter() - start)
            if closed:  # the server stopped while the model loaded
                model.close()
        if on_done is not None:
            try:
                on_done(self)
            except Exception:
                logger.exception("the callback after loading %s failed", self.name)


class Admission:
    """One model thread, and admission to it: ``slots`` admitted jobs hold a slot at once (one, for a server's
    offline transcriptions), ``max_queue`` more wait for one in arrival order, and one more is refused with
    :class:`QueueFull`. Use from one event loop (the counters are not locked).

    Two ways in: :meth:`submit` admits one job and runs it on the thread; :meth:`admit` + :meth:`slot` admit a
    session that holds its slot across many steps, each run with :meth:`run`. :meth:`run` takes no queue slot:
    it is for the steps of work already admitted (a Wyoming transcription holding its slot, the live sessions
    of the Realtime endpoint, whose number the endpoint bounds itself). Steps run on threads of their own,
    beside the model thread, since a loaded model serves calls from any thread: it takes them a chunk at a time
    inside (live streams' steps first), so a step waits for at most one chunk of a running transcription.

    Args:
        max_queue: Jobs that may wait for a slot (0: none).
        slots: Jobs that hold a slot at once.
        name: The threads' name.
        clock: Seconds, for the time jobs hold their slots (the retry-after estimate).
        step_threads: Threads for :meth:`run` (steps of different sessions wait for each other inside the model,
            not for a thread; each session runs one step at a time).
    """

    def __init__(
        self,
        max_queue: int,
        slots: int = 1,
        name: str = "qwen-whisper-worker",
        clock: Callable[[], float] = time.perf_counter,
        step_threads: int = 8,
    ) -> None:
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        if slots < 1:
            raise ValueError(f"slots must be 1 or more, got {slots}")
        self.max_queue = max_queue
        self.slots = slots
        #: Jobs (and sessions) that have ended, failed or not.
        self.completed = 0
        self._clock = clock
        self._admitted = 0
        self._running = 0
        self._average_seconds = 1.0
        self._semaphore: asyncio.Semaphore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._steps = ThreadPoolExecutor(max_workers=step_threads, thread_name_prefix=f"{name}-step")

    @property
    def running(self) -> int:
        """Admitted jobs holding a slot."""
        return self._running

    @property
    def waiting(self) -> int:
        """Admitted jobs waiting for a slot."""
        return self._admitted - self._running

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the recent average time a job holds its slot, per slot."""
        return max(1, math.ceil(self._average_seconds / self.slots))

    def admit(self) -> None:
        """Count one more job in; it then waits in :meth:`slot`, and :meth:`leave` is called when it ends
        (finished, failed or cancelled, before or after its slot).

        Raises:
            QueueFull: ``slots`` jobs run and ``max_queue`` wait already.
        """
        if self._admitted >= self.slots + self.max_queue:
            raise QueueFull(self.retry_after(), self.running, self.waiting)
        self._admitted += 1

    def leave(self) -> None:
        """An admitted job has ended."""
        self._admitted -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the block (an admitted job waits here for its turn)."""
        semaphore = self._slots()
        await semaphore.acquire()
        self._running += 1
        start = self._clock()
        try:
            yield
        finally:
            self._release(start)

    async def submit(self, job: Callable[[], T]) -> T:
        """Admit ``job``, wait for a slot, run it on the model thread; its slot is freed when it really ends
        there (or is cancelled before it starts), not when the caller stops waiting.

        Raises:
            QueueFull: ``slots`` jobs run and ``max_queue`` wait already.
        """
        self.admit()
        try:
            await self._slots().acquire()
        except BaseException:
            self.leave()
            raise
        self._running += 1
        start = self._clock()
        try:
            future = self._executor.submit(job)
        except BaseException:
            self._end(start)
            raise
        loop = asyncio.get_running_loop()
        future.add_done_callback(lambda _: _call_soon(loop, self._end, start))
        return await asyncio.wrap_future(future)

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` (a step of admitted work) on a step thread, beside the model thread, without a queue slot."""
        return await asyncio.wrap_future(self._steps.submit(job))

    def run_soon(self, job: Callable[[], T]) -> Future[T]:
        """Hand ``job`` to a step thread without waiting for it (clean-up from a cancelled task)."""
        return self._steps.submit(job)

    def close(self) -> None:
        """Finish the jobs and steps running, drop those not started, and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._steps.shutdown(wait=True, cancel_futures=True)

    def _slots(self) -> asyncio.Semaphore:
        if self._semaphore is None:  # made in the event loop that uses it
            self._semaphore = asyncio.Semaphore(self.slots)
        return self._semaphore

    def _release(self, start: float) -> None:
        self._running -= 1
        self._slots().release()
        self.completed += 1
        self._average_seconds = 0.7 * self._average_seconds + 0.3 * (self._clock() - start)

    def _end(self, start: float) -> None:
        self._release(start)
        self.leave()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping and nobody counts
        loop.call_soon_threadsafe(callback, *args)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listening address) is reachable only from this machine: ``localhost`` or a loopback
    IP address. Other names count as reachable from elsewhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
