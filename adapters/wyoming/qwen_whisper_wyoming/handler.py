"""One Wyoming connection: ``describe`` -> ``info``; ``transcribe``, ``audio-start``, ``audio-chunk``...,
``audio-stop`` -> ``transcript``.

This module owns the protocol of a connection. Audio is transcribed while it arrives: the chunks, in any
rate, width and channel count, are converted to 16 kHz mono and fed to the live engine in 0.25 s blocks on
the model's thread, and every segment the engine closes at a pause is final. A client that sent
``transcribe`` asked for a transcription and hears it as it goes: ``transcript-start`` at the first audio,
a ``transcript-chunk`` for each final (the chunks add up to the transcript), then after ``audio-stop`` the
``transcript`` (always sent: Home Assistant's client reads only that) and ``transcript-stop``. A client that
sent only audio gets the ``transcript`` alone. The connection closes after the transcript, as
``wyoming-faster-whisper`` does. Errors (a model still loading, a busy server, a language the model lacks, audio
it cannot read) are an ``error`` event at once; the rest of that request is read and dropped, and the connection closes at
its ``audio-stop`` (closing earlier would reset the connection over the unread audio and lose the error).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.server import AsyncEventHandler

from qwen_whisper_compat import AudioLoadError, QwenWhisperError, UnsupportedOptionError
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.pcm import PcmConverter
from qwen_whisper_compat.serving import ModelLoading, QueueFull
from qwen_whisper_compat.streaming import Stream, StreamEvent
from qwen_whisper_wyoming.service import Service

logger = logging.getLogger("qwen_whisper_wyoming.handler")

#: Samples fed to the live engine at a time (0.25 s at 16 kHz); the last block of a stream may be shorter.
BLOCK = SAMPLE_RATE // 4
#: Blocks that may wait for the model (60 s of audio); a client sending faster than that is slowed down by
#: TCP itself (the connection stops being read) rather than held in memory.
MAX_WAITING_BLOCKS = 240


@dataclass(frozen=True)
class Request:
    """What a ``transcribe`` event asked for (or the server's defaults, for a client that sent none)."""

    language: str | None
    prompt: str | None
    #: Whether to send the streaming events (the client sent ``transcribe``).
    streaming: bool


class TranscribeHandler(AsyncEventHandler):
    """The events of one connection (see the module docstring); made by the server for each client."""

    def __init__(self, service: Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.service = service
        self._request: Request | None = None
        self._job: _Job | None = None
        self._failed = False
        self._write_lock = asyncio.Lock()

    async def write_event(self, event: Event) -> None:
        async with self._write_lock:
            await super().write_event(event)

    async def handle_event(self, event: Event) -> bool:
        """Answer one event; False closes the connection."""
        if Describe.is_type(event.type):
            await self.write_event(self.service.info().event())
            return True
        if self._failed:  # the error was sent: the rest of this request is read and dropped up to its end
            return not AudioStop.is_type(event.type)
        if not any(kind.is_type(event.type) for kind in (AudioChunk, AudioStart, AudioStop, Transcribe)):
            logger.debug("ignoring a %s event", event.type)
            return True
        try:
            _ = self.service.model  # raises ModelLoading while the model loads
            if AudioChunk.is_type(event.type):
                await (await self._open()).add(AudioChunk.from_event(event))
            elif AudioStart.is_type(event.type):
                await self._open()
            elif AudioStop.is_type(event.type):
                await self._finish()
                return False
            else:
                self._transcribe(Transcribe.from_event(event))
        except Exception as e:  # noqa: BLE001  (every failure is the client's error event, never a dropped connection)
            await self._fail(e)
            return not AudioStop.is_type(event.type)
        return True

    async def disconnect(self) -> None:
        """The client went away: drop its transcription and free its slot."""
        if self._job is not None:
            self._job.cancel()
            self._job = None

    # ------------------------------------------------------------------------------------------ events
    def _transcribe(self, transcribe: Transcribe) -> None:
        if self._job is not None:
            logger.debug("a transcribe event after the audio started is ignored")
            return
        context = [self.service.settings.initial_prompt or ""]
        # Home Assistant's names and terms to bias recognition towards: Qwen3-ASR takes them as context.
        context.append(", ".join([*(transcribe.transcript_names or ()), *(transcribe.transcript_terms or ())]))
        prompt = "\n".join(c for c in context if c) or None
        self._request = Request(self.service.resolve_language(transcribe.language), prompt, streaming=True)
        logger.debug("transcribe: language %s, context %r", self._request.language or "detected", prompt)

    async def _open(self) -> _Job:
        """The transcription of this connection, started at its first audio event."""
        if self._job is None:
            request = self._request or Request(self.service.settings.language, self.service.settings.initial_prompt,
                                               streaming=False)  # fmt: skip
            self._job = _Job(self.service, request, self._chunk)  # raises QueueFull before anything is sent
            if request.streaming:
                await self.write_event(TranscriptStart(language=request.language).event())
        return self._job

    async def _finish(self) -> None:
        request = self._request
        streaming = request is not None and request.streaming
        if self._job is None:
            logger.info("audio-stop without audio: an empty transcript")
            text, language = "", request.language if request else None
            if streaming:  # no audio opened the transcription: its start is sent now
                await self.write_event(TranscriptStart(language=language).event())
        else:
            job, self._job = self._job, None
            text, language = await job.finish()
            logger.info("transcript (%.1f s of audio): %s", job.seconds, text)
        await self.write_event(Transcript(text=text, language=language or None).event())
        if streaming:
            await self.write_event(TranscriptStop().event())

    async def _chunk(self, text: str) -> None:
        await self.write_event(TranscriptChunk(text=text).event())

    async def _fail(self, error: Exception) -> None:
        code = _code(error)
        self._failed = True
        if isinstance(error, QueueFull):
            settings = self.service.settings
            text = f"{error} (qwen-whisper-wyoming --max-sessions {settings.max_sessions} --max-queue {settings.max_queue})"
            logger.warning("%s: %s", code, text)
        elif isinstance(error, QwenWhisperError):
            text = str(error)
            logger.warning("%s: %s", code, text)
        else:  # not one of ours: a bug or the machine; its traceback helps
            text = f"the transcription failed ({type(error).__name__}: {error})"
            logger.error("%s: %s", code, text, exc_info=error)
        if self._job is not None:
            self._job.cancel()
            self._job = None
        try:
            await self.write_event(Error(text=text, code=code).event())
        except (ConnectionError, RuntimeError):
            logger.debug("the client left before the error could be sent")


class _Job:
    """One transcription: converted audio waits in a bounded queue for the task that feeds the live engine.

    Args:
        service: The shared model.
        request: Language, context and whether finals are sent as they come.
        on_final: Awaited with each final's text (as it extends the transcript) for streaming clients.
    """

    def __init__(self, service: Service, request: Request, on_final: Callable[[str], Awaitable[None]]) -> None:
        self.service = service
        self.request = request
        self.on_final = on_final
        self.samples = 0
        self.text = ""
        self.language = request.language or ""
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue(maxsize=MAX_WAITING_BLOCKS)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._converter: PcmConverter | None = None
        service.admission.admit()
        self._task = asyncio.create_task(self._run(), name="qwen-whisper-wyoming transcription")
        self._task.add_done_callback(self._ended)

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    async def add(self, chunk: AudioChunk) -> None:
        """Convert one chunk and queue whole blocks of it (waits while the queue is full)."""
        fmt = (chunk.rate, chunk.width, chunk.channels)
        converter = self._converter
        if converter is None or (converter.rate, converter.width, converter.channels) != fmt:
            if converter is not None:  # the client changed its format mid-stream
                self._hold(converter.flush())
            converter = self._converter = PcmConverter(*fmt)
        self._hold(converter.convert(chunk.audio))
        while self._pending_size >= BLOCK:
            held = np.concatenate(self._pending)
            self._pending, self._pending_size = [held[BLOCK:]], held.size - BLOCK
            await self._put(held[:BLOCK])

    async def finish(self) -> tuple[str, str]:
        """Queue what is left, end the stream; the transcript's text and language."""
        if self._converter is not None:
            self._hold(self._converter.flush())
        if self._pending_size:
            await self._put(np.concatenate(self._pending))
            self._pending, self._pending_size = [], 0
        await self._put(None)
        await self._task
        return self.text.strip(), self.language

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.service.admission.leave()
        if not task.cancelled() and task.exception() is not None:
            logger.debug("transcription ended with %r", task.exception())

    def cancel(self) -> None:
        self._task.cancel()

    def _hold(self, samples: np.ndarray) -> None:
        if samples.size:
            self._pending.append(samples)
            self._pending_size += samples.size

    async def _put(self, block: np.ndarray | None) -> None:
        if block is not None:
            self.samples += block.size
        if not self._task.done():
            put = asyncio.ensure_future(self._queue.put(block))
            await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
            if put.done():
                return
            put.cancel()
        self._task.result()  # the transcription failed (a stream that cannot open, a failed decode): raise its error
        raise RuntimeError("the transcription ended before its audio did")

    async def _run(self) -> None:
        admission = self.service.admission
        async with admission.slot():
            stream = await self._open_stream()
            try:
                while (block := await self._queue.get()) is not None:
                    await self._take(await admission.run(functools.partial(stream.feed, block)))
                await self._take(await admission.run(stream.finish))
                self.language = stream.result()["language"] or self.language
            finally:
                # the slot is held until the stream is closed: steps run on threads of their own, so the next
                # session's stream may otherwise open before this one has given the model's stream back
                await asyncio.shield(asyncio.wrap_future(admission.run_soon(stream.close)))

    async def _open_stream(self) -> Stream[Any]:
        """``model.stream()`` on the model's thread; one that opens after this task was cancelled (the client
        left while it waited) is closed there, so that it does not keep the model's live-stream slot."""
        opening = self.service.admission.run_soon(functools.partial(
            self.service.model.stream, self.request.language, initial_prompt=self.request.prompt, partials=False,
        ))  # fmt: skip
        try:
            return await asyncio.wrap_future(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise

    async def _take(self, events: list[StreamEvent[Any]]) -> None:
        for event in events:
            if event.type != "final" or not event.speech:
                continue
            before = self.text.lstrip()
            self.text += "".join(segment["text"] for segment in event.segments)
            added = self.text.lstrip()[len(before) :]
            if added.strip() and self.request.streaming:
                await self.on_final(added)


def _close_opened(opening: Future[Stream[Any]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def _code(error: Exception) -> str:
    if isinstance(error, ModelLoading):
        return "loading"
    if isinstance(error, QueueFull):
        return "busy"
    if isinstance(error, UnsupportedOptionError):
        return "unsupported-option"
    if isinstance(error, AudioLoadError):
        return "bad-audio"
    return "transcription-failed"
