"""One Realtime transcription session (a WebSocket admitted by :class:`~.realtime.RealtimeHub`): the client's
events in order, the live stream's work on the model thread, and the OpenAI events it causes.

Items: with turn detection (``server_vad``, the default) each speech segment the live engine closes is an
item: ``speech_started`` when speech is heard, deltas from its partials, then ``speech_stopped``,
``committed``, ``conversation.item.added`` and ``completed`` when its final is decoded. Without turn detection
the item is everything appended between two ``input_audio_buffer.commit`` events.

Deltas only ever append: they carry a partial's text up to its last word (for text without spaces, up to
its last character) as long as it extends what was sent. The completed transcript is the final's, which is
decoded as the offline pipeline decodes that span and may revise the partials.

Failures: whatever a step of the live stream raises is logged and becomes an OpenAI ``error`` event (and a
``...transcription.failed`` event for each item it leaves unfinished); the stream and the audio not yet
transcribed are dropped, and the session goes on (the next audio opens a new stream). Should the session's
own processing stop, the client gets an ``error`` event and the connection closes with code 1011.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from qwen_whisper_compat import QwenWhisperError, Whisper
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.pcm import PcmConverter
from qwen_whisper_compat.streaming import Stream, StreamEvent
from qwen_whisper_server.realtime_schema import (
    MIN_COMMIT_MS,
    Item,
    ProtocolError,
    TranscriptionConfig,
    apply_update,
    check_event,
    error_event,
    join_text,
    milliseconds,
    new_id,
    server_event,
)

if TYPE_CHECKING:
    from qwen_whisper_server.realtime import RealtimeHub

logger = logging.getLogger("qwen_whisper_server.realtime")

#: WebSocket close code when the session cannot go on (an internal error).
CLOSE_INTERNAL_ERROR = 1011


@dataclass
class _Op:
    """One step of a connection's work, in the order its events arrived."""

    kind: Literal["audio", "commit", "clear", "update"]
    samples: np.ndarray | None = None
    nbytes: int = 0
    event_id: str | None = None
    config: TranscriptionConfig | None = None


class Connection:
    """One WebSocket's session: a reader (the client's events, in order, into ``_ops``) and a processor (the
    live stream's work on the model thread, and the events it causes).

    Args:
        hub: The endpoint that admitted the connection (its bounds, the model thread, the model id).
        websocket: The accepted WebSocket.
        model: The loaded model.
    """

    def __init__(self, hub: RealtimeHub, websocket: WebSocket, model: Whisper) -> None:
        self.hub, self.ws, self.model = hub, websocket, model
        self.session_id = new_id("sess")
        self.config = TranscriptionConfig()  # as the client last set it
        self.converter = PcmConverter(self.config.rate, encoding=self.config.encoding)
        self._ops: deque[_Op] = deque()
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self.pending_bytes = 0
        self.gone = False
        # the processor's state
        self.stream: Stream[Any] | None = None
        self.stream_config = self.config  # the settings of the open stream (or of the last one)
        self.next_config = self.config  # the settings the next stream opens with
        self.offset = 0.0  # seconds of the session before the open stream
        self.buffered = 0  # samples of the buffer not committed yet
        self.items: dict[int, Item] = {}  # server VAD: the open stream's speech segments with an item
        self.buffer_item: Item | None = None  # no turn detection: the buffer's item
        self.buffer_text = ""
        self.previous_item: str | None = None

    async def run(self) -> None:
        """Serve the session until the client leaves (or the processing stops: then close with 1011)."""
        await self.send(server_event("session.created", session=self._session()))
        reader = asyncio.create_task(self._read())
        processor = asyncio.create_task(self._process())
        try:
            await asyncio.wait({reader, processor}, return_when=asyncio.FIRST_COMPLETED)
            if processor.done():
                await self._stopped(processor)
            elif reader.exception() is not None:  # the client did not leave: reading failed
                await self._stopped(reader)
        finally:
            self.gone = True
            for task in (reader, processor):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._drop_stream()
            logger.info("realtime session %s ended", self.session_id)

    async def _stopped(self, task: asyncio.Task[None]) -> None:
        """The processor or the reader ended by itself (a failure outside the steps' failure handling): say so
        and close with 1011."""
        error = None if task.cancelled() else task.exception()
        logger.error("realtime session %s: its processing stopped; closing the connection", self.session_id,
                     exc_info=error)  # fmt: skip
        await self.send(error_event(ProtocolError(
            f"Internal server error: the session's processing stopped ({type(error).__name__}); reconnect to go on.",
            kind="server_error", code="internal_error",
        )))  # fmt: skip
        self.gone = True
        with contextlib.suppress(Exception):
            await self.ws.close(CLOSE_INTERNAL_ERROR)

    # ------------------------------------------------------------------------------------------ reader
    async def _read(self) -> None:
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            try:
                if text is None:
                    raise ProtocolError("Binary frames are not events: send each event as a JSON text message.",
                                        code="invalid_type")  # fmt: skip
                try:
                    event = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ProtocolError(f"The event is not valid JSON ({e.msg} at character {e.pos}).",
                                        code="invalid_json") from e  # fmt: skip
                await self._handle(check_event(event))
            except ProtocolError as e:
                logger.info("realtime session %s: refused an event: %s", self.session_id, e.message)
                await self.send(error_event(e))
            if self.gone:
                return

    async def _handle(self, event: dict[str, Any]) -> None:
        kind, eid = event["type"], event.get("event_id")
        if kind in ("session.update", "transcription_session.update"):
            config = apply_update(self.config, event, self.model.languages)
            if (config.encoding, config.rate) != (self.config.encoding, self.config.rate):
                self._enqueue_tail()
                self.converter = PcmConverter(config.rate, encoding=config.encoding)
            self.config = config
            self._push(_Op("update", config=config))
            if kind == "transcription_session.update":
                await self.send(server_event("transcription_session.updated", session=config.beta_session(
                    self.session_id, self.hub.model_id)))  # fmt: skip
            else:
                await self.send(server_event("session.updated", session=self._session()))
        elif kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise ProtocolError("Missing required parameter: 'audio' (base64-encoded audio bytes).",
                                    code="missing_required_parameter", param="audio", event_id=eid)  # fmt: skip
            try:
                data = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError) as e:
                raise ProtocolError("Invalid 'audio'. Expected base64-encoded audio bytes.", param="audio",
                                    event_id=eid) from e  # fmt: skip
            limit = self.hub.options.max_buffer_bytes
            if self.pending_bytes + len(data) > limit:
                raise ProtocolError(
                    f"The server has {self.pending_bytes} bytes of this session's audio still to transcribe, and "
                    f"holds at most {limit}: this append was dropped. Send audio at real-time pace.",
                    kind="server_error", code="input_audio_buffer_full", param="audio", event_id=eid,
                )  # fmt: skip
            samples = self.converter.convert(data)
            self.pending_bytes += len(data)
            self._push(_Op("audio", samples=samples, nbytes=len(data)))
        elif kind == "input_audio_buffer.commit":
            self._enqueue_tail()
            self._push(_Op("commit", event_id=eid))
        else:  # input_audio_buffer.clear: drop the audio not committed yet, queued or not
            while self._ops and self._ops[-1].kind == "audio":
                self.pending_bytes -= self._ops.pop().nbytes
            self.converter.flush()
            self._push(_Op("clear", event_id=eid))

    def _enqueue_tail(self) -> None:
        """What the resampler still holds, as audio of the buffer (before a commit or a format change)."""
        tail = self.converter.flush()
        if tail.size:
            self._push(_Op("audio", samples=tail))

    def _push(self, op: _Op) -> None:
        self._ops.append(op)
        self._wake.set()

    # --------------------------------------------------------------------------------------- processor
    async def _process(self) -> None:
        while True:
            while not self._ops:
                self._wake.clear()
                await self._wake.wait()
            op = self._ops.popleft()
            try:
                if op.kind == "audio":
                    parts, nbytes = [op.samples], op.nbytes
                    while self._ops and self._ops[0].kind == "audio":  # all the audio that waited, at once
                        more = self._ops.popleft()
                        parts.append(more.samples)
                        nbytes += more.nbytes
                    try:
                        await self._feed(np.concatenate([p for p in parts if p is not None]))
                    finally:
                        self.pending_bytes -= nbytes
                elif op.kind == "commit":
                    await self._commit(op.event_id)
                elif op.kind == "clear":
                    await self._clear()
                elif op.config is not None:
                    await self._update(op.config)
            except Exception as e:  # noqa: BLE001  (any failure of a step: reported, and the session goes on)
                await self._failed(e)

    async def _feed(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        stream = self.stream or await self._open()
        self.buffered += samples.size
        events = await self.hub.admission.run(lambda: stream.feed(samples))
        await self._emit(events)
        speech = stream.open_speech
        if self._vad and speech is not None:
            await self._item(speech[0], speech[1])

    async def _open(self) -> Stream[Any]:
        config = self.stream_config = self.next_config
        live = config.live_options()
        model = self.model
        stream: Stream[Any] = await self.hub.admission.run(
            lambda: model.stream(language=config.language, initial_prompt=config.prompt or None, **live)
        )
        self.stream = stream
        return stream

    @property
    def _vad(self) -> bool:
        return self.stream_config.turn_detection is not None

    async def _commit(self, event_id: str | None) -> None:
        if self.buffered * 1000 < MIN_COMMIT_MS * SAMPLE_RATE:
            ms = self.buffered * 1000 / SAMPLE_RATE
            await self.send(error_event(ProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {ms:.2f}ms of audio.", code="input_audio_buffer_commit_empty",
                event_id=event_id,
            )))  # fmt: skip
            return
        seconds = self.buffered / SAMPLE_RATE
        if not self._vad:
            item = self.buffer_item or Item(self.offset)
            self.buffer_item = item
            await self._committed(item)
        produced = self.previous_item
        await self._finish()
        if self._vad and self.previous_item == produced:
            # nothing in the buffer was speech: it is committed as an item that transcribes to nothing
            item = Item(self.offset - seconds)
            await self._committed(item)
            await self._completed(item, "", seconds)
        elif not self._vad and self.buffer_item is not None:
            item = self.buffer_item
            await self._send_delta(item, self.buffer_text, final=True)
            await self._completed(item, self.buffer_text, seconds)
        self._reset_buffer()

    async def _finish(self) -> None:
        """End the open stream: its last finals, then the next audio opens a new one."""
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                await self._emit(await self.hub.admission.run(stream.finish))
            finally:
                self.offset += stream.position
                await self.hub.admission.run(stream.close)
        self.items.clear()
        self.buffered = 0

    async def _clear(self) -> None:
        await self._drop_stream()
        await self.send(server_event("input_audio_buffer.cleared"))

    async def _update(self, config: TranscriptionConfig) -> None:
        """New settings: with turn detection the open stream ends here (its speech becomes items under the old
        settings); without, the buffer keeps its settings until it is committed."""
        self.next_config = config
        if self.stream is not None and self._vad:
            await self._finish()

    async def _drop_stream(self) -> None:
        """Close the open stream without decoding what it holds; the buffer and its items are forgotten."""
        stream, self.stream = self.stream, None
        if stream is not None:
            self.offset += stream.position
            with contextlib.suppress(Exception):
                await self.hub.admission.run(stream.close)
        self._reset_buffer()

    def _reset_buffer(self) -> None:
        self.items.clear()
        self.buffer_item, self.buffer_text, self.buffered = None, "", 0

    async def _failed(self, e: Exception) -> None:
        """A step failed: its items fail, an ``error`` event says why, and the stream and its audio are dropped."""
        if isinstance(e, QwenWhisperError):
            logger.warning("realtime session %s: transcription failed: %s", self.session_id, e)
        else:
            logger.error("realtime session %s: transcription failed", self.session_id, exc_info=e)
        message = (f"The transcription failed ({type(e).__name__}: {e}); the audio not transcribed yet was dropped "
                   "and the session goes on.")  # fmt: skip
        error = {"type": "server_error", "code": "transcription_failed", "message": message, "param": None}
        for item in [*self.items.values(), *([self.buffer_item] if self.buffer_item else [])]:
            await self.send(server_event("conversation.item.input_audio_transcription.failed", item_id=item.id,
                                         content_index=0, error=error))  # fmt: skip
        await self.send(server_event("error", error={**error, "event_id": None}))
        await self._drop_stream()

    # ------------------------------------------------------------------------------------------ events
    async def _emit(self, events: Iterable[StreamEvent[Any]]) -> None:
        for ev in events:
            if self._vad:
                if ev.type == "partial":
                    await self._send_delta(await self._item(ev.index, ev.start), ev.text, final=False)
                elif ev.speech:
                    item = await self._item(ev.index, ev.start)
                    await self.send(server_event("input_audio_buffer.speech_stopped", item_id=item.id,
                                                 audio_end_ms=milliseconds(self.offset + ev.end)))  # fmt: skip
                    await self._committed(item)
                    await self._send_delta(item, ev.text, final=True)
                    await self._completed(item, ev.text, ev.end - ev.start)
                    del self.items[ev.index]
            else:
                item = self.buffer_item or Item(self.offset + ev.start)
                self.buffer_item = item
                if ev.type == "partial":
                    await self._send_delta(item, join_text(self.buffer_text, ev.text), final=False)
                elif ev.speech:
                    self.buffer_text = join_text(self.buffer_text, ev.text)
                    await self._send_delta(item, self.buffer_text, final=False)

    async def _item(self, index: int, start: float) -> Item:
        """The item of speech segment ``index`` (``speech_started`` is sent when it is new)."""
        item = self.items.get(index)
        if item is None:
            item = self.items[index] = Item(self.offset + start)
            await self.send(server_event("input_audio_buffer.speech_started", item_id=item.id,
                                         audio_start_ms=milliseconds(item.start)))  # fmt: skip
        return item

    async def _send_delta(self, item: Item, text: str, final: bool) -> None:
        piece = item.delta(text, final)
        if piece:
            await self.send(server_event("conversation.item.input_audio_transcription.delta", item_id=item.id,
                                         content_index=0, delta=piece))  # fmt: skip

    async def _committed(self, item: Item) -> None:
        await self.send(server_event("input_audio_buffer.committed", item_id=item.id,
                                     previous_item_id=self.previous_item))  # fmt: skip
        await self.send(server_event("conversation.item.added", previous_item_id=self.previous_item, item={
            "id": item.id, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }))  # fmt: skip
        self.previous_item = item.id

    async def _completed(self, item: Item, transcript: str, seconds: float) -> None:
        await self.send(server_event(
            "conversation.item.input_audio_transcription.completed", item_id=item.id, content_index=0,
            transcript=transcript, usage={"type": "duration", "seconds": round(max(seconds, 0.0), 3)},
        ))  # fmt: skip

    def _session(self) -> dict[str, Any]:
        return self.config.session(self.session_id, self.hub.model_id)

    async def send(self, event: dict[str, Any]) -> None:
        if self.gone:
            return
        async with self._send_lock:
            try:
                await self.ws.send_text(json.dumps(event, ensure_ascii=False))
            except Exception:  # noqa: BLE001  (the client went away: the reader sees it and ends the session)
                self.gone = True


__all__ = ["CLOSE_INTERNAL_ERROR", "Connection"]
