"""The Starlette application: OpenAI's ``/v1/audio/transcriptions`` (streamed as Server-Sent Events with
``stream=true``), ``/v1/models`` and the Realtime transcription WebSocket ``/v1/realtime``, beside the host
contracts of whisper-asr-webservice (:mod:`.webservice`: ``/asr``, ``/detect-language``, ``/status``) and of
whisper.cpp's server (:mod:`.whispercpp`: ``/inference``, ``/load``), all on one shared model.

This module owns the routing and OpenAI's HTTP endpoints (their status codes and error shape); what the
contracts share, the access rules, the upload limit and the model thread, is :mod:`.gate`'s. The model is
passed in, loaded or still loading (no module globals): while it loads, ``/health`` answers 503
``{"status": "loading"}`` and every other request (after its API key is checked) a 503 in its contract's
error shape. Inference runs on one model thread (:class:`qwen_whisper_compat.serving.Admission`): the HTTP
transcriptions of every contract one at a time behind one bounded queue, the live sessions' steps
(:mod:`.realtime`) in turn with them without taking a queue slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from qwen_whisper_compat import Whisper, load_audio
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.results import ResultDict, SegmentDict
from qwen_whisper_compat.serving import Admission, BackgroundModel
from qwen_whisper_server.gate import Access, Gate, Network, UploadTooLarge
from qwen_whisper_server.realtime import RealtimeHub, RealtimeOptions
from qwen_whisper_server.schema import (
    ModelCard,
    ModelList,
    RequestError,
    TranscriptionRequest,
    diarized_json,
    error_body,
    parse_request,
    subtitles,
    verbose_json,
)
from qwen_whisper_server.served import ServedModel
from qwen_whisper_server.sse import stream_transcription
from qwen_whisper_server.webservice import WebserviceApi
from qwen_whisper_server.whispercpp import WhisperCppApi

logger = logging.getLogger("qwen_whisper_server.app")


@dataclass(frozen=True)
class ServerOptions:
    """What the server is configured with at startup."""

    #: The id ``GET /v1/models`` lists (the ``model`` form field is accepted whatever it says).
    model_id: str
    #: Requests that may wait behind the running transcription; one more gets 503.
    max_queue: int = 8
    #: Largest request body accepted (OpenAI's limit is 25 MB); larger ones get 413.
    max_upload_bytes: int = 25 * 1024 * 1024
    #: When set, every request but ``/health`` and ``/status`` needs ``Authorization: Bearer <api_key>``.
    api_key: str | None = None
    #: Clients in these networks call the host contracts (``/asr``, ``/detect-language``, ``/inference``)
    #: without the key (Bazarr, Speakr and whisper.cpp clients send none); ``/v1`` and ``/load`` still need it.
    keyless_networks: tuple[Network, ...] = ()
    #: Realtime transcription sessions at once (each holds a live stream of the model); one more is refused
    #: with an error event. Each connection may hold ``max_upload_bytes`` of audio not transcribed yet.
    max_live_sessions: int = 2
    #: Loads a model by name or folder for whisper.cpp's ``POST /load``; ``None``: ``/load`` is refused.
    load: Callable[[str], Whisper] | None = None
    #: The path of whisper.cpp's inference endpoint (its ``--inference-path``).
    inference_path: str = "/inference"


def create_app(model: Whisper | BackgroundModel[Whisper], options: ServerOptions) -> Starlette:
    """The ASGI application serving ``model``; the caller keeps the model and closes it after the server stops
    (with ``app.state.served.close()``, which also closes a model that ``POST /load`` put in its place).

    Args:
        model: A model from :func:`qwen_whisper_compat.load_model`, shared by all requests, or one still
            loading (the server answers 503 until it is loaded).
        options: Queue depth, upload limit, access rules and the listed model id.
    """
    loading = model if isinstance(model, BackgroundModel) else BackgroundModel.loaded(model, options.model_id)
    served = ServedModel(loading, options.model_id)
    admission = Admission(options.max_queue, name="qwen-whisper-server")
    gate = Gate(served, admission, Access(options.api_key, options.keyless_networks), options.max_upload_bytes)
    api = _OpenAI(gate, options)
    webservice = WebserviceApi(gate)
    whispercpp = WhisperCppApi(gate, options.load)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(admission.close)

    inference = "/" + options.inference_path.strip("/")
    app = Starlette(
        routes=[
            Route("/v1/audio/transcriptions", api.transcriptions, methods=["POST"]),
            Route("/v1/audio/translations", api.translations, methods=["POST"]),
            Route("/v1/models", api.models, methods=["GET"]),
            Route("/v1/models/{model:path}", api.model_card, methods=["GET"]),
            Route("/health", api.health, methods=["GET"]),
            WebSocketRoute("/v1/realtime", api.realtime.endpoint),
            Route("/asr", webservice.asr, methods=["POST"]),
            Route("/detect-language", webservice.detect_language, methods=["POST"]),
            Route("/status", webservice.status, methods=["GET"]),
            Route(inference, whispercpp.inference, methods=["POST"]),
            Route("/load", whispercpp.load, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.admission = admission
    app.state.served = served
    return app


class _OpenAI:
    """OpenAI's endpoints, on the server's :class:`~.gate.Gate`."""

    def __init__(self, gate: Gate, options: ServerOptions) -> None:
        self.gate = gate
        self.options = options
        self.created = int(time.time())
        self.realtime = RealtimeHub(gate.served, gate.admission, options.api_key, RealtimeOptions(
            max_sessions=options.max_live_sessions, max_buffer_bytes=options.max_upload_bytes))  # fmt: skip

    async def transcriptions(self, request: Request) -> Response:
        """``POST /v1/audio/transcriptions``."""
        return await self.gate.guard(request, self._transcriptions, _error)

    async def _transcriptions(self, request: Request) -> Response:
        model = self.gate.model(request)
        async with self.gate.form(request) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestError(400, "file is required: send the audio as the multipart field 'file'",
                                   param="file", code="missing_file")  # fmt: skip
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            granularities = [v for v in form.getlist("timestamp_granularities[]") if isinstance(v, str)]
            params = parse_request(fields, granularities or ["segment"])
            if upload.size == 0:
                raise RequestError(400, f"the audio file {upload.filename!r} is empty", param="file",
                                   code="invalid_value")  # fmt: skip
            if params.words and not model.has_aligner:
                raise RequestError(400, "word timestamps need the forced aligner, which this server was started "
                                   "without", param="timestamp_granularities[]", code="unsupported_value")  # fmt: skip
            if params.stream:
                audio = await upload.read()  # the stream outlives this form and its upload
                return await stream_transcription(self.gate, lambda model, on_segment: _transcription_job(
                    model, audio, params, on_segment)[0])  # fmt: skip
            result, duration = await self.gate.run(lambda model: _transcription_job(model, upload.file, params))
        fmt = params.response_format
        if fmt == "json":
            return JSONResponse({"text": result["text"].strip()})
        if fmt == "verbose_json":
            return JSONResponse(verbose_json(result, duration, params.words))
        if fmt == "diarized_json":
            return JSONResponse(diarized_json(result, duration))
        if fmt == "text":
            return PlainTextResponse(result["text"].strip() + "\n")
        return PlainTextResponse(subtitles(result, fmt))

    async def translations(self, request: Request) -> Response:
        """``POST /v1/audio/translations``: refused, Qwen3-ASR does not translate."""

        async def refuse(request: Request) -> Response:
            self.gate.model(request)
            raise RequestError(400, "Translation is not supported: Qwen3-ASR transcribes speech in its own "
                               "language. Use /v1/audio/transcriptions.", code="unsupported_endpoint")  # fmt: skip

        return await self.gate.guard(request, refuse, _error)

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the one model this server holds."""
        try:
            self.gate.model(request)
        except RequestError as e:
            return _error(e)
        listing: ModelList = {"object": "list", "data": [self._card()]}
        return JSONResponse(listing)

    async def model_card(self, request: Request) -> Response:
        """``GET /v1/models/{model}``."""
        try:
            self.gate.model(request)
            wanted = request.path_params["model"]
            if wanted != self.gate.served.name:
                raise RequestError(404, f"The model {wanted!r} does not exist; this server serves "
                                   f"{self.gate.served.name!r}", param="model", code="model_not_found")  # fmt: skip
        except RequestError as e:
            return _error(e)
        return JSONResponse(self._card())

    async def health(self, request: Request) -> Response:
        """``GET /health`` (no API key): 503 ``{"status": "loading"}`` (or ``"failed"``) until the model is
        loaded, then 200 ``{"status": "ok"}`` with the queue and the live sessions."""
        served = self.gate.served
        state = served.state
        if state != "ready":
            return JSONResponse({"status": state, "model": served.name}, status_code=503,
                                headers={"Retry-After": "5"})  # fmt: skip
        admission = self.gate.admission
        return JSONResponse({
            "status": "ok",
            "model": served.name,
            "transcriptions": admission.completed,
            "running": admission.running,
            "waiting": admission.waiting,
            "max_queue": admission.max_queue,
            "live_sessions": self.realtime.active,
            "max_live_sessions": self.realtime.options.max_sessions,
        })  # fmt: skip

    def _card(self) -> ModelCard:
        return {"id": self.gate.served.name, "object": "model", "created": self.created,
                "owned_by": "qwen-whisper-compat"}  # fmt: skip


def _transcription_job(
    model: Whisper,
    audio: Any,
    request: TranscriptionRequest,
    on_segment: Callable[[SegmentDict], None] | None = None,
) -> tuple[ResultDict, float]:
    """On the model thread: decode ``audio`` (bytes or a binary file object) and transcribe it; the result and
    the audio's duration in seconds."""
    samples = load_audio(audio)
    duration = len(samples) / SAMPLE_RATE
    start = time.perf_counter()
    result = model.transcribe(samples, on_segment=on_segment, **request.transcribe_options())
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
