"""``qwen_whisper_compat.serving``: the admission to the one model thread, the background model load and the
loopback check that qwen-whisper-server and qwen-whisper-wyoming share. Every wait is bounded."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest

from qwen_whisper_compat import QwenWhisperError
from qwen_whisper_compat.serving import Admission, BackgroundModel, ModelLoading, QueueFull, is_loopback

TIMEOUT = 10.0


def _run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT))


class _Gate:
    """Jobs that block on the model thread until opened, recording the threads they ran on and overlaps."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.threads: set[int] = set()
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def job(self, value: int) -> Any:
        def run() -> int:
            with self.lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                self.threads.add(threading.get_ident())
            try:
                assert self.open.wait(TIMEOUT)
                return value
            finally:
                with self.lock:
                    self.inside -= 1

        return run


# ------------------------------------------------------------------------------------------------ admission
def test_one_job_at_a_time_a_bounded_queue_and_a_typed_refusal() -> None:
    admission = Admission(max_queue=2)
    gate = _Gate()

    async def scenario() -> tuple[list[Any], QueueFull]:
        jobs = [asyncio.ensure_future(admission.submit(gate.job(i))) for i in range(3)]
        await asyncio.sleep(0.05)
        assert (admission.running, admission.waiting) == (1, 2)
        with pytest.raises(QueueFull) as refused:
            await admission.submit(gate.job(99))
        assert (admission.running, admission.waiting) == (1, 2), "a refused job takes no place"
        gate.open.set()
        return list(await asyncio.gather(*jobs)), refused.value

    try:
        results, refused = _run(scenario())
    finally:
        admission.close()
    assert results == [0, 1, 2]
    assert gate.most_inside == 1 and len(gate.threads) == 1, "one job at a time, on one thread"
    assert isinstance(refused, QwenWhisperError) and isinstance(refused, RuntimeError)
    assert refused.retry_after >= 1 and (refused.running, refused.waiting) == (1, 2)
    assert f"retry after {refused.retry_after} s" in str(refused)
    assert (admission.running, admission.waiting, admission.completed) == (0, 0, 3)


def test_the_retry_after_estimate_follows_the_time_jobs_take() -> None:
    """Each job holds its slot 6 s of the injected clock: the estimate grows from its 1 s start towards 6 s, and
    halves with two slots."""
    now = [0.0]
    estimates = []

    def job() -> None:
        now[0] += 6.0

    async def scenario(admission: Admission) -> None:
        for _ in range(6):
            await admission.submit(job)
            estimates.append(admission.retry_after())
        blocker = asyncio.ensure_future(admission.submit(lambda: time.sleep(0.2)))
        others = [asyncio.ensure_future(admission.submit(lambda: None)) for _ in range(admission.slots - 1)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull) as refused:
            await admission.submit(job)
        assert refused.value.retry_after == estimates[-1]
        await asyncio.gather(blocker, *others)

    averages = [1.0]  # the documented estimate: a moving average (0.7 old, 0.3 new) of the time held, from 1 s
    for _ in range(6):
        averages.append(0.7 * averages[-1] + 0.3 * 6.0)
    one, two = Admission(max_queue=0, clock=lambda: now[0]), Admission(max_queue=0, slots=2, clock=lambda: now[0])
    try:
        _run(scenario(one))
        assert estimates == [math.ceil(a) for a in averages[1:]] and estimates[0] == 3 and estimates[-1] == 6
        estimates.clear()
        now[0] = 0.0
        _run(scenario(two))
        assert estimates == [math.ceil(a / 2) for a in averages[1:]]  # the same averages, over two slots
    finally:
        one.close()
        two.close()


def test_a_slot_is_freed_when_the_job_ends_not_when_its_caller_leaves() -> None:
    admission = Admission(max_queue=0)
    gate = _Gate()

    async def scenario() -> None:
        job = asyncio.ensure_future(admission.submit(gate.job(1)))
        await asyncio.sleep(0.05)
        job.cancel()  # the client went away; the job still runs on the thread
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await admission.submit(gate.job(2))
        gate.open.set()
        deadline = time.monotonic() + TIMEOUT
        while admission.running:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await admission.submit(gate.job(3)) == 3

    try:
        _run(scenario())
    finally:
        admission.close()


def test_run_takes_no_slot_and_does_not_wait_for_the_running_job() -> None:
    """The steps of work already admitted (live sessions) run while the queue is full, beside the job that
    holds the model thread (the model schedules its decoder itself), not after it."""
    admission = Admission(max_queue=0)
    gate = _Gate()

    async def scenario() -> int:
        held = asyncio.ensure_future(admission.submit(gate.job(1)))
        await asyncio.sleep(0.05)
        step = await asyncio.wait_for(admission.run(lambda: 7), TIMEOUT)  # while the job still runs
        assert not held.done()
        gate.open.set()
        await held
        return step

    try:
        assert _run(scenario()) == 7
        assert admission.completed == 1, "run() is not counted as an admitted job"
    finally:
        admission.close()


def test_sessions_hold_their_slot_across_steps() -> None:
    """Two slots, one waiting place: a third session waits, a fourth is refused; each holds its slot for many
    steps."""
    admission = Admission(max_queue=1, slots=2)
    order: list[str] = []

    async def session(name: str, release: asyncio.Event) -> None:
        try:
            async with admission.slot():
                order.append(f"{name} in")
                for _ in range(3):
                    await admission.run(lambda: time.sleep(0.01))
                await release.wait()
                order.append(f"{name} out")
        finally:
            admission.leave()

    async def scenario() -> None:
        releases = [asyncio.Event() for _ in range(3)]
        tasks = []
        for name, release in zip("abc", releases, strict=True):
            admission.admit()
            tasks.append(asyncio.ensure_future(session(name, release)))
        await asyncio.sleep(0.1)
        assert (admission.running, admission.waiting) == (2, 1) and order == ["a in", "b in"]
        with pytest.raises(QueueFull):
            admission.admit()
        releases[0].set()
        await asyncio.sleep(0.1)
        assert order[-2:] == ["a out", "c in"]
        releases[1].set()
        releases[2].set()
        await asyncio.gather(*tasks)

    try:
        _run(scenario())
    finally:
        admission.close()
    assert (admission.running, admission.waiting, admission.completed) == (0, 0, 3)


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        Admission(max_queue=-1)
    with pytest.raises(ValueError, match="slots"):
        Admission(max_queue=0, slots=0)


# ------------------------------------------------------------------------------------------------ background load
class _Model:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def close(self) -> None:
        assert not self.closed.is_set(), "closed twice"
        self.closed.set()


def test_a_background_load_is_loading_then_ready() -> None:
    release = threading.Event()
    model = _Model()
    done: list[str] = []

    def load() -> _Model:
        assert release.wait(TIMEOUT)
        return model

    loading = BackgroundModel(load, "tiny")
    assert loading.state == "loading"  # before start, too
    loading.start(on_done=lambda m: done.append(m.state))
    with pytest.raises(ModelLoading, match="'tiny' is still loading"):
        _ = loading.model
    assert loading.error is None
    with pytest.raises(RuntimeError, match="already loading"):
        loading.start()
    release.set()
    assert loading.future.result(TIMEOUT) is model
    assert loading.state == "ready" and loading.model is model
    deadline = time.monotonic() + TIMEOUT
    while not done:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert done == ["ready"]
    loading.close()
    assert model.closed.is_set()


def test_a_failed_load_is_reported_not_raised_on_its_thread() -> None:
    def load() -> _Model:
        raise FileNotFoundError("no model folder here")

    loading = BackgroundModel(load, "missing")
    states: list[str] = []
    loading.start(on_done=lambda m: states.append(m.state))
    with pytest.raises(FileNotFoundError):
        loading.future.result(TIMEOUT)
    assert loading.state == "failed" and isinstance(loading.error, FileNotFoundError)
    with pytest.raises(ModelLoading, match="could not be loaded: no model folder here") as caught:
        _ = loading.model
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    deadline = time.monotonic() + TIMEOUT
    while not states:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert states == ["failed"]
    loading.close()  # nothing to close


def test_a_model_closed_while_loading_is_closed_once_loaded() -> None:
    release = threading.Event()
    model = _Model()

    def load() -> _Model:
        assert release.wait(TIMEOUT)
        return model

    loading = BackgroundModel(load, "tiny")
    loading.start()
    loading.close()  # the server stopped first
    assert not model.closed.is_set()
    release.set()
    assert model.closed.wait(TIMEOUT)


def test_an_already_loaded_model() -> None:
    model = _Model()
    loaded = BackgroundModel.loaded(model, "given")
    assert loaded.state == "ready" and loaded.model is model
    with pytest.raises(RuntimeError):
        loaded.start()


# ------------------------------------------------------------------------------------------------ loopback
@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("LOCALHOST", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False),
     ("", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
