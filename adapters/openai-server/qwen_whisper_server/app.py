"""The Starlette application: OpenAI's ``/v1/audio/transcriptions``, ``/v1/models`` and the Realtime
transcription WebSocket ``/v1/realtime`` on one shared model.

This module owns HTTP: routing, the API key, the upload limit, status codes and OpenAI's error shape. The
model is passed in, loaded or still loading (no module globals): while it loads, ``/health`` answers 503
``{"status": "loading"}`` and every ``/v1`` request (after its API key is checked) a 503 in OpenAI's error shape
(code ``model_loading``). Inference runs on one model thread (:class:`qwen_whisper_compat.serving.Admission`):
the HTTP transcriptions one at a time behind a bounded queue, the live sessions' steps (:mod:`.realtime`) in
turn with them without taking a queue slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message, Receive

from qwen_whisper_compat import AudioLoadError, UnsupportedOptionError, Whisper, load_audio
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.results import ResultDict
from qwen_whisper_compat.serving import Admission, BackgroundModel, ModelLoading, QueueFull
from qwen_whisper_server.realtime import RealtimeHub, RealtimeOptions
from qwen_whisper_server.schema import (
    ModelCard,
    ModelList,
    RequestError,
    TranscriptionRequest,
    error_body,
    parse_request,
    subtitles,
    verbose_json,
)

logger = logging.getLogger("qwen_whisper_server.app")

#: After refusing a request, read and drop at most this much of the body it is still sending, so that the
#: client sees our error response rather than a connection reset.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0
#: Retry-After (seconds) of the 503 answered while the model loads.
LOADING_RETRY_SECONDS = 5


@dataclass(frozen=True)
class ServerOptions:
    """What the server is configured with at startup."""

    #: The id ``GET /v1/models`` lists (the ``model`` form field is accepted whatever it says).
    model_id: str
    #: Requests that may wait behind the running transcription; one more gets 503.
    max_queue: int = 8
    #: Largest request body accepted (OpenAI's limit is 25 MB); larger ones get 413.
    max_upload_bytes: int = 25 * 1024 * 1024
    #: When set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
    api_key: str | None = None
    #: Realtime transcription sessions at once (each holds a live stream of the model); one more is refused
    #: with an error event. Each connection may hold ``max_upload_bytes`` of audio not transcribed yet.
    max_live_sessions: int = 2


def create_app(model: Whisper | BackgroundModel[Whisper], options: ServerOptions) -> Starlette:
    """The ASGI application serving ``model``; the caller keeps the model and closes it after the server stops.

    Args:
        model: A model from :func:`qwen_whisper_compat.load_model`, shared by all requests, or one still
            loading (the server answers 503 until it is loaded).
        options: Queue depth, upload limit, API key and the listed model id.
    """
    loading = model if isinstance(model, BackgroundModel) else BackgroundModel.loaded(model, options.model_id)
    api = _Api(loading, options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(api.admission.close)

    app = Starlette(
        routes=[
            Route("/v1/audio/transcriptions", api.transcriptions, methods=["POST"]),
            Route("/v1/audio/translations", api.translations, methods=["POST"]),
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/models/{model:path}", api.model_card, methods=["GET"]),
            Route("/health", api.health, methods=["GET"]),
            WebSocketRoute("/v1/realtime", api.realtime.endpoint),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.admission = api.admission
    return app


class UploadTooLarge(RequestError):
    """The request body is larger than ``--max-upload-mb``."""

    def __init__(self, limit: int, size: int, how: str = "read") -> None:
        super().__init__(413, f"Maximum content size limit ({limit}) exceeded ({size} bytes {how})",
                         param="file", code="file_too_large")  # fmt: skip


class _LimitedBody:
    """The request's ASGI ``receive``, counting body bytes and raising :class:`UploadTooLarge` past the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.finished = False

    async def __call__(self) -> Message:
        message = await self._receive()
        self._count(message)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit, self.received)
        return message

    def _count(self, message: Message) -> None:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.finished = not message.get("more_body", False)
        else:
            self.finished = True

    async def discard_rest(self) -> None:
        """Read and drop what the client still sends (bounded by ``DRAIN_BYTES`` and ``DRAIN_SECONDS``)."""

        async def drain() -> None:
            start = self.received
            while not self.finished and self.received - start < DRAIN_BYTES:
                self._count(await self._receive())

        with contextlib.suppress(asyncio.TimeoutError, ClientDisconnect):
            await asyncio.wait_for(drain(), DRAIN_SECONDS)


class _Api:
    """The endpoints, sharing one model, one :class:`~qwen_whisper_compat.serving.Admission` and the options."""

    def __init__(self, model: BackgroundModel[Whisper], options: ServerOptions) -> None:
        self.loading = model
        self.options = options
        self.admission = Admission(options.max_queue, name="qwen-whisper-server")
        self.created = int(time.time())
        self.realtime = RealtimeHub(model, self.admission, options.model_id, options.api_key, RealtimeOptions(
            max_sessions=options.max_live_sessions, max_buffer_bytes=options.max_upload_bytes))  # fmt: skip

    def _model(self, request: Request) -> Whisper:
        """The model, once the request's API key is checked.

        Raises:
            RequestError: 401 for a missing or wrong key; 503 while the model loads (or when it failed to).
        """
        self._authorize(request)
        try:
            return self.loading.model
        except ModelLoading as e:
            raise RequestError(503, f"{e}.", kind="server_error", code="model_loading",
                               headers={"Retry-After": str(LOADING_RETRY_SECONDS)}) from e  # fmt: skip

    async def transcriptions(self, request: Request) -> Response:
        """``POST /v1/audio/transcriptions``."""
        body = _LimitedBody(request.receive, self.options.max_upload_bytes)
        try:
            model = self._model(request)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.options.max_upload_bytes:
                raise UploadTooLarge(self.options.max_upload_bytes, int(declared), "declared")
            async with Request(request.scope, body).form(max_files=1, max_fields=64) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise RequestError(400, "file is required: send the audio as the multipart field 'file'",
                                       param="file", code="missing_file")  # fmt: skip
                fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
                granularities = [v for v in form.getlist("timestamp_granularities[]") if isinstance(v, str)]
                params = parse_request(fields, granularities or ["segment"])
                return await self._transcribe(model, upload, params)
        except RequestError as e:
            await body.discard_rest()
            logger.info("refused a transcription request: %d %s", e.status, e.message)
            return _error(e)
        except ClientDisconnect:
            logger.info("the client went away during the upload")
            return Response(status_code=400)

    async def _transcribe(self, model: Whisper, upload: UploadFile, params: TranscriptionRequest) -> Response:
        if upload.size == 0:
            raise RequestError(400, f"the audio file {upload.filename!r} is empty", param="file", code="invalid_value")
        if params.words and not model.has_aligner:
            raise RequestError(400, "word timestamps need the forced aligner, which this server was started without",
                               param="timestamp_granularities[]", code="unsupported_value")  # fmt: skip
        try:
            result, duration = await self.admission.submit(lambda: _transcription_job(model, upload.file, params))
        except QueueFull as e:
            raise RequestError(503, "The server is busy transcribing other requests; retry later.",
                               kind="server_error", code="server_busy",
                               headers={"Retry-After": str(e.retry_after)}) from e  # fmt: skip
        except AudioLoadError as e:
            raise RequestError(400, f"Audio file {upload.filename!r} could not be decoded or its format is not "
                               f"supported ({e})", param="file", code="invalid_value") from e  # fmt: skip
        except UnsupportedOptionError as e:
            raise RequestError(400, str(e), code="unsupported_value") from e
        fmt = params.response_format
        if fmt == "json":
            return JSONResponse({"text": result["text"].strip()})
        if fmt == "verbose_json":
            return JSONResponse(verbose_json(result, duration, params.words))
        if fmt == "text":
            return PlainTextResponse(result["text"].strip() + "\n")
        return PlainTextResponse(subtitles(result, fmt))

    async def translations(self, request: Request) -> Response:
        """``POST /v1/audio/translations``: refused, Qwen3-ASR does not translate."""
        body = _LimitedBody(request.receive, self.options.max_upload_bytes)
        try:
            self._model(request)
            raise RequestError(400, "Translation is not supported: Qwen3-ASR transcribes speech in its own "
                               "language. Use /v1/audio/transcriptions.", code="unsupported_endpoint")  # fmt: skip
        except RequestError as e:
            await body.discard_rest()
            return _error(e)

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the one model this server holds."""
        try:
            self._model(request)
        except RequestError as e:
            return _error(e)
        listing: ModelList = {"object": "list", "data": [self._card()]}
        return JSONResponse(listing)

    async def model_card(self, request: Request) -> Response:
        """``GET /v1/models/{model}``."""
        try:
            self._model(request)
            wanted = request.path_params["model"]
            if wanted != self.options.model_id:
                raise RequestError(404, f"The model {wanted!r} does not exist; this server serves "
                                   f"{self.options.model_id!r}", param="model", code="model_not_found")  # fmt: skip
        except RequestError as e:
            return _error(e)
        return JSONResponse(self._card())

    async def health(self, request: Request) -> Response:
        """``GET /health`` (no API key): 503 ``{"status": "loading"}`` (or ``"failed"``) until the model is
        loaded, then 200 ``{"status": "ok"}`` with the queue and the live sessions."""
        state = self.loading.state
        if state != "ready":
            return JSONResponse({"status": state, "model": self.options.model_id}, status_code=503,
                                headers={"Retry-After": str(LOADING_RETRY_SECONDS)})  # fmt: skip
        admission = self.admission
        return JSONResponse({
            "status": "ok",
            "model": self.options.model_id,
            "transcriptions": admission.completed,
            "running": admission.running,
            "waiting": admission.waiting,
            "max_queue": admission.max_queue,
            "live_sessions": self.realtime.active,
            "max_live_sessions": self.realtime.options.max_sessions,
        })  # fmt: skip

    def _card(self) -> ModelCard:
        return {"id": self.options.model_id, "object": "model", "created": self.created,
                "owned_by": "qwen-whisper-compat"}  # fmt: skip

    def _authorize(self, request: Request) -> None:
        key = self.options.api_key
        if key is None:
            return
        header = request.headers.get("authorization", "")
        if not header:
            raise RequestError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise RequestError(401, "Incorrect API key provided.", code="invalid_api_key")


def _transcription_job(model: Whisper, audio: Any, request: TranscriptionRequest) -> tuple[ResultDict, float]:
    """On the model thread: decode ``audio`` (bytes or a binary file object) and transcribe it; the result and
    the audio's duration in seconds."""
    samples = load_audio(audio)
    duration = len(samples) / SAMPLE_RATE
    start = time.perf_counter()
    result = model.transcribe(samples, **request.transcribe_options())
    logger.info(
        "transcribed %.1f s of audio in %.2f s (%s, %d segments)",
        duration, time.perf_counter() - start, request.response_format, len(result["segments"]),
    )  # fmt: skip
    return result, duration


def _error(e: RequestError) -> JSONResponse:
    return JSONResponse(e.body(), status_code=e.status, headers=e.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this response, and uvicorn logs it with its traceback
    return JSONResponse(error_body(f"Internal server error: {type(exc).__name__}", kind="server_error"),
                        status_code=500)  # fmt: skip


__all__ = ["ServerOptions", "UploadTooLarge", "create_app"]
