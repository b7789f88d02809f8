"""OpenAI's streamed transcription (``stream=true`` on ``/v1/audio/transcriptions``): Server-Sent Events, one
``transcript.text.delta`` per segment as the model finishes it, then ``transcript.text.done`` with the whole
text, as OpenAI's API sends them and its ``openai`` client reads them (``data: {json}`` lines, no event names).

This module owns the event stream; the job and the errors before the first event (busy, bad audio) are the
caller's: those are answered as plain HTTP errors, since nothing has been sent yet. A failure after the first
event ends the stream with an ``{"error": ...}`` event, which the ``openai`` client raises as an ``APIError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response, StreamingResponse

from qwen_whisper_compat import Whisper
from qwen_whisper_compat.results import ResultDict, SegmentDict
from qwen_whisper_server.gate import Gate
from qwen_whisper_server.schema import RequestError

logger = logging.getLogger("qwen_whisper_server.sse")

#: ``job(model, on_segment)``: transcribes on the model thread, calling ``on_segment`` with each segment.
StreamJob = Callable[[Whisper, Callable[[SegmentDict], None]], ResultDict]


async def stream_transcription(gate: Gate, job: StreamJob) -> Response:
    """Run ``job`` on the model thread and answer its segments as events once the first one is made.

    Raises:
        RequestError: The job failed before its first segment (the queue is full, the audio is bad, ...).
    """
    loop = asyncio.get_running_loop()
    segments: asyncio.Queue[SegmentDict] = asyncio.Queue()

    def on_segment(segment: SegmentDict) -> None:  # on the model thread
        loop.call_soon_threadsafe(segments.put_nowait, segment)

    task = asyncio.ensure_future(gate.run(lambda model: job(model, on_segment)))
    first = asyncio.ensure_future(segments.get())
    waits: set[asyncio.Future[Any]] = {task, first}
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    pending: asyncio.Future[SegmentDict] | None = first
    if not first.done():
        first.cancel()
        pending = None
        task.result()  # raises the job's error as an HTTP answer; else the audio had no speech: events follow
    return StreamingResponse(
        _events(task, segments, pending),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    task: asyncio.Future[ResultDict],
    segments: asyncio.Queue[SegmentDict],
    pending: asyncio.Future[SegmentDict] | None,
) -> AsyncIterator[str]:
    sent = ""
    try:
        while True:
            if pending is None and not task.done():
                pending = asyncio.ensure_future(segments.get())
            if pending is not None and not pending.done():
                waits: set[asyncio.Future[Any]] = {task, pending}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if pending is not None and pending.done():
                delta = _delta(sent, pending.result()["text"])
                pending = None
            elif not segments.empty():  # the job has ended; what it made before is still queued
                delta = _delta(sent, segments.get_nowait()["text"])
            else:
                break
            if delta:
                sent += delta
                yield _event({"type": "transcript.text.delta", "delta": delta, "logprobs": None})
        result = task.result()
        yield _event({"type": "transcript.text.done", "text": result["text"].strip(), "logprobs": None})
    except RequestError as e:
        logger.info("a streamed transcription failed after its first events: %s", e.message)
        yield _event(dict(e.body()))
    except Exception as e:  # the events already sent cannot become an HTTP error: the stream says it failed
        logger.exception("a streamed transcription failed")
        yield _event({"error": {"message": f"Internal server error: {type(e).__name__}", "type": "server_error",
                                "param": None, "code": None}})  # fmt: skip
    finally:
        if pending is not None:
            pending.cancel()
        if not task.done():  # the client went away: the job ends on the model thread, its result unread
            task.add_done_callback(_consume)


def _delta(sent: str, text: str) -> str:
    return text.lstrip() if not sent else text


def _consume(task: asyncio.Future[Any]) -> None:
    with contextlib.suppress(BaseException):
        task.exception()


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


__all__ = ["StreamJob", "stream_transcription"]
