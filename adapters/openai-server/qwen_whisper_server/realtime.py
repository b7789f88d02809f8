"""``/v1/realtime?intent=transcription``: OpenAI's Realtime transcription sessions over a WebSocket.

This module owns admitting connections: the API key, the intent, the model being loaded, the bound on
sessions. Each admitted connection is a :class:`~.realtime_connection.Connection` holding one live stream of
the shared model (:meth:`Whisper.stream`); every step of it runs on the server's one model thread
(:meth:`qwen_whisper_compat.serving.Admission.run`, which takes no queue slot), in turn with the HTTP
transcriptions. Wire shapes are :mod:`.realtime_schema`'s.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from dataclasses import dataclass

from starlette.websockets import WebSocket

from qwen_whisper_compat import Whisper
from qwen_whisper_compat.serving import Admission, ModelLoading
from qwen_whisper_server.realtime_connection import Connection
from qwen_whisper_server.realtime_schema import ProtocolError, error_event
from qwen_whisper_server.served import ServedModel

logger = logging.getLogger("qwen_whisper_server.realtime")

#: WebSocket close codes: a refused key (policy violation) and a full or still loading server (try again later).
CLOSE_POLICY = 1008
CLOSE_TRY_LATER = 1013
#: The browser form of the API key (a subprotocol, since browsers cannot set headers).
KEY_SUBPROTOCOL = "openai-insecure-api-key."


@dataclass(frozen=True)
class RealtimeOptions:
    """The WebSocket side's bounds."""

    #: Live sessions at once (each holds a live stream of the model); one more gets an error event.
    max_sessions: int = 2
    #: Audio a connection may have sent that is not transcribed yet (bytes as sent); more is refused.
    max_buffer_bytes: int = 25 * 1024 * 1024


class RealtimeHub:
    """The endpoint: admits connections and runs each one.

    Args:
        served: The server's model, loaded or loading; a connection leases it for its life (once loaded, its
            ``max_live_streams`` is raised to ``options.max_sessions`` before a session opens a stream).
            Sessions report its name as their transcription model when the client names none.
        admission: The server's model thread.
        api_key: When set, a connection needs ``Authorization: Bearer <key>`` (or the browser subprotocol).
        options: The bounds.
    """

    def __init__(self, served: ServedModel, admission: Admission, api_key: str | None,
                 options: RealtimeOptions) -> None:  # fmt: skip
        if options.max_sessions < 1:
            raise ValueError(f"max_sessions must be 1 or more, got {options.max_sessions}")
        self.served, self.admission, self.api_key = served, admission, api_key
        self.options = options
        self.active = 0

    @property
    def model_id(self) -> str:
        """The id sessions report as their transcription model when the client names none."""
        return self.served.name

    async def endpoint(self, websocket: WebSocket) -> None:
        """The WebSocket route."""
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
        refusal = self._refusal(websocket, offered)
        if refusal is not None:
            error, close_code = refusal
            logger.info("refused a realtime connection: %s", error.message)
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps(error_event(error)))
                await websocket.close(close_code)
            return
        self.active += 1
        try:
            with self.served.lease() as model:  # loaded: the refusal checks that, in this same tick
                self._ready(model)
                await Connection(self, websocket, model).run()
        finally:
            self.active -= 1

    def _ready(self, model: Whisper) -> None:
        """Make ``model`` ready for ``max_sessions`` live streams."""
        model.max_live_streams = max(model.max_live_streams, self.options.max_sessions)

    def _refusal(self, websocket: WebSocket, offered: list[str]) -> tuple[ProtocolError, int] | None:
        if self.api_key is not None:
            header = websocket.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            keys = [token.strip()] if scheme.lower() == "bearer" else []
            keys += [p[len(KEY_SUBPROTOCOL) :] for p in offered if p.startswith(KEY_SUBPROTOCOL)]
            if not keys:
                return ProtocolError("You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
                                     code="missing_api_key"), CLOSE_POLICY  # fmt: skip
            if not any(hmac.compare_digest(k.encode(), self.api_key.encode()) for k in keys):
                return ProtocolError("Incorrect API key provided.", code="invalid_api_key"), CLOSE_POLICY
        intent = websocket.query_params.get("intent")
        if intent != "transcription":
            return ProtocolError(
                "This server holds speech-to-text models only: open a transcription session at "
                f"/v1/realtime?intent=transcription (got intent={intent!r}).", param="intent",
            ), CLOSE_POLICY  # fmt: skip
        try:
            _ = self.served.model
        except ModelLoading as e:
            return ProtocolError(f"{e}.", kind="server_error", code="model_loading"), CLOSE_TRY_LATER
        if self.active >= self.options.max_sessions:
            return ProtocolError(
                f"The server is transcribing {self.active} live sessions, its limit: retry later.",
                kind="server_error", code="session_limit_reached",
            ), CLOSE_TRY_LATER  # fmt: skip
        return None


__all__ = ["CLOSE_POLICY", "CLOSE_TRY_LATER", "KEY_SUBPROTOCOL", "RealtimeHub", "RealtimeOptions"]
