"""One loaded model, many callers: calls from several threads at once (the whisper face, the faster-whisper
face, a batched call, language detection, live streams) each give what they give alone, nothing hangs, and
the scheduling puts live steps before waiting offline work.

Before the engine scheduled its decoder, two ``transcribe`` calls from two threads ended in ``ValueError: row
0 of the last batch has no logits``, and with a live stream fed beside them in ``llama_decode returned -1``,
a SIGABRT of the whole process, or a thread hung inside ``llama_decode``. Every join here is bounded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from qwen_whisper_compat import WhisperModel
from qwen_whisper_compat.engine.turns import LIVE, OFFLINE, Turns

SR = 16000
#: The longest any one test waits for its threads (the tiny models decode a call in well under a second).
JOIN_SECONDS = 300


@pytest.fixture(scope="module")
def faster(under_model_env: Callable[..., Any]) -> Iterator[WhisperModel]:
    """``WhisperModel("base")`` on the tiny models; its ``.model`` is the whisper face of the same model."""
    model = under_model_env(WhisperModel, "base")
    model.max_live_streams = 2
    yield model
    model.model.close()


def whisper_run(model: Any, audio: np.ndarray, **kwargs: Any) -> Any:
    result = model.transcribe(audio, word_timestamps=True, **{"temperature": 0.0, **kwargs})
    return result["text"], [(s["start"], s["end"], s["tokens"], [(w["word"], w["start"]) for w in s["words"]])
                            for s in result["segments"]]  # fmt: skip


def faster_run(model: WhisperModel, audio: np.ndarray, **kwargs: Any) -> Any:
    segments, info = model.transcribe(audio, **{"temperature": 0.0, **kwargs})
    return info.language, [(s.start, s.end, s.text, s.tokens) for s in segments]


def live_run(model: Any, audio: np.ndarray, partials: bool = False) -> list[tuple[Any, ...]]:
    """The finals of a live stream fed in 100 ms blocks. Without partials every computation of the stream is
    fixed by its audio, so the finals' texts must not change; with them, when a partial comes depends on the
    clock (and so whether a final finds its windows prefilled or evaluates them in its own batch, which moves
    logits by float rounding): only the segments' bounds, fixed by the voice activity detector, are compared."""
    events = []
    with model.stream(language="en", partials=partials, temperature=0.0) as stream:
        for block in np.array_split(audio, max(1, audio.size // (SR // 10))):
            events += stream.feed(block)
        events += stream.finish()
    return [(e.index, e.start, e.end, e.speech) + (() if partials else (e.text,)) for e in events if e.type == "final"]


def run_together(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Start every job on its own thread at once (a barrier); their results, each thread joined in bounded time."""
    barrier = threading.Barrier(len(jobs))

    def start(job: Callable[[], Any]) -> Any:
        barrier.wait(timeout=60)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(start, job) for name, job in jobs.items()}
        return {name: future.result(timeout=JOIN_SECONDS) for name, future in futures.items()}


def test_every_face_from_several_threads_gives_its_lone_result(
    faster: WhisperModel, jfk: np.ndarray, zh20s: np.ndarray
) -> None:
    """Two whisper ``transcribe`` calls, two faster-whisper ones (one batched), a language detection and a
    live stream, all on one model at once: each equals its run alone."""
    from qwen_whisper_compat import BatchedInferencePipeline

    model = faster.model
    talk = np.concatenate([jfk, np.zeros(SR, np.float32), jfk])
    batched = BatchedInferencePipeline(faster)
    jobs: dict[str, Callable[[], Any]] = {
        # whisper's fallback of temperatures (the random model loops): retries reuse their prompt's cache
        "whisper-en": lambda: whisper_run(model, jfk, temperature=(0.0, 0.5, 1.0)),
        "whisper-zh": lambda: whisper_run(model, zh20s),
        "faster-en": lambda: faster_run(faster, talk, language="en"),
        "faster-batched": lambda: faster_run(batched, zh20s, batch_size=4),  # type: ignore[arg-type]
        "detect": lambda: faster.detect_language(zh20s)[:2],
        "live": lambda: live_run(model, talk),
    }
    alone = {name: job() for name, job in jobs.items()}
    assert alone["live"] and alone["whisper-en"][1] and alone["faster-batched"][1]
    together = run_together(jobs)
    for name in jobs:
        assert together[name] == alone[name], name


def test_two_streams_and_an_offline_call_together(faster: WhisperModel, jfk: np.ndarray, zh20s: np.ndarray) -> None:
    model = faster.model
    talk = np.concatenate([jfk, np.zeros(SR, np.float32), jfk])
    jobs: dict[str, Callable[[], Any]] = {
        "stream-a": lambda: live_run(model, talk, partials=True),
        "stream-b": lambda: live_run(model, jfk),
        "offline": lambda: whisper_run(model, zh20s),
    }
    alone = {name: job() for name, job in jobs.items()}
    for _ in range(2):
        assert run_together(jobs) == alone
    assert not model.recognizer.transcriber.decoder.leased, "a finished stream kept its KV sequences"


def test_an_offline_call_leaves_a_stream_s_kv_cache_alone(faster: WhisperModel, jfk: np.ndarray) -> None:
    """An offline transcription between two feeds of a stream clears only its own sequence: the stream's
    next final still finds its prompt prefix and completed windows in its cache."""
    model = faster.model
    long_speech = np.concatenate([jfk, jfk[: 6 * SR]])  # 17 s without a long pause: a segment with windows
    live = {"max_segment_seconds": 30.0, "search_seconds": 5.0, "min_silence_seconds": 3.0, "partials": False}
    with model.stream(language="en", temperature=0.0, **live) as stream:
        stream.feed(long_speech[: 12 * SR])  # the first 8 s window completes and is prefilled for the final
        model.transcribe(jfk, temperature=0.0)
        stream.feed(long_speech[12 * SR :])
        (final,) = [e for e in stream.finish() if e.type == "final"]
        stats = stream.stats
    assert final.end == pytest.approx(long_speech.size / SR)  # one segment: the final covers all of it
    assert stats.final_kept_rows >= model.recognizer.transcriber.model_dir.manifest.encoder.window_tokens


def test_a_live_stream_waits_for_a_chunk_not_for_a_long_transcription(faster: WhisperModel, jfk: np.ndarray) -> None:
    """A stream fed while a two-minute transcription runs on another thread gets its finals before that
    transcription ends, and no live step waits longer than the longest turn an offline chunk held."""
    model = faster.model
    decoder = model.recognizer.transcriber.decoder
    long_audio = np.tile(jfk, 11)  # two minutes: four 30 s chunks, each one turn of the decoder
    times: dict[str, list[float]] = {"final": [], "offline": []}

    def offline() -> None:
        model.transcribe(long_audio, temperature=0.0)
        times["offline"].append(time.monotonic())

    def live() -> None:
        with model.stream(language="en", partials=False, temperature=0.0) as stream:
            for block in np.array_split(np.tile(jfk, 2), 22):  # 1 s blocks, fed as fast as they are taken
                times["final"] += [time.monotonic() for e in stream.feed(block) if e.type == "final" and e.speech]
            stream.finish()

    decoder.turns.stats.longest_wait.clear()
    decoder.turns.stats.longest_hold.clear()
    run_together({"offline": offline, "live": live})
    assert times["final"] and min(times["final"]) < times["offline"][0]
    longest_chunk = decoder.turns.stats.longest_hold[OFFLINE]
    assert decoder.turns.stats.longest_wait.get(LIVE, 0.0) <= longest_chunk + 0.5


# --------------------------------------------------------------------------------------------- turns
def test_live_turns_go_before_waiting_offline_work() -> None:
    """While one turn runs, an offline caller and then a live caller wait: the live one goes first."""
    turns = Turns()
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with turns.turn(OFFLINE):
            holding.set()
            release.wait(timeout=30)
            order.append("holder")

    def waiter(name: str, priority: int) -> None:
        with turns.turn(priority):
            order.append(name)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holding.wait(timeout=30)
    for name, priority in (("offline-1", OFFLINE), ("offline-2", OFFLINE), ("live", LIVE)):
        t = threading.Thread(target=waiter, args=(name, priority))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 30
        while len(turns._waiting) < len(threads) - 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert order == ["holder", "live", "offline-1", "offline-2"]
    assert turns.stats.waited == 3


def test_a_turn_is_reentrant_and_an_interrupted_wait_leaves_the_queue() -> None:
    turns = Turns()
    with turns.turn(), turns.turn(LIVE):
        assert turns.held
    assert not turns.held
    entered = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with turns.turn():
            entered.set()
            done.wait(timeout=30)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(timeout=30)

    class Interrupted(Exception):
        pass

    def interrupt() -> None:
        raise Interrupted

    # a waiter whose wait is interrupted (as KeyboardInterrupt would) must not block the queue behind it
    original = turns._cond.wait
    turns._cond.wait = lambda timeout=None: interrupt()  # type: ignore[method-assign,assignment]
    with pytest.raises(Interrupted), turns.turn():
        pass
    turns._cond.wait = original  # type: ignore[method-assign]
    done.set()
    t.join(timeout=30)
    with turns.turn():  # free again, nobody queued
        assert not turns._waiting
