"""whisper-asr-webservice's API (ahmetoner/whisper-asr-webservice, ``app/webservice.py``), which Bazarr's and
Speakr's Whisper providers and subgen's clients speak: ``POST /asr``, ``POST /detect-language``, and the
``GET /status`` that Bazarr's "Test connection" button calls.

This module owns that contract: its query parameters (FastAPI's parsing and its 422 ``{"detail": [...]}``
body for a value it cannot take), its ``{"detail": "..."}`` errors, and its answers: the body the whisper
writer of ``output`` writes (the bytes ``qwen-whisper -f FMT`` writes for the same samples), always sent as
``text/plain`` with ``Content-Disposition`` and ``Asr-Engine`` as the original sends them. Access, the upload
limit and the model thread are :mod:`.gate`'s; these routes are host contracts, open to the keyless networks.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qwen_whisper_compat import AudioLoadError, Whisper, load_audio
from qwen_whisper_compat.pcm import PcmConverter
from qwen_whisper_compat.results import ResultDict
from qwen_whisper_compat.tokenizer import LANGUAGES
from qwen_whisper_compat.utils import WRITERS
from qwen_whisper_server import __version__
from qwen_whisper_server.gate import Gate
from qwen_whisper_server.schema import RequestError

logger = logging.getLogger("qwen_whisper_server.webservice")

#: The ``Asr-Engine`` header (the original sends its engine's name: ``openai_whisper``, ``faster_whisper``, ...).
ENGINE = "qwen_whisper_compat"
OUTPUTS = ("txt", "vtt", "srt", "tsv", "json")
TASKS = ("transcribe", "translate")
#: The original's language choices: whisper's codes (``LANGUAGE_CODES = sorted(tokenizer.LANGUAGES.keys())``).
LANGUAGE_CODES = tuple(sorted(LANGUAGES))
_TRUE = ("true", "1", "yes", "on", "t", "y")
_FALSE = ("false", "0", "no", "off", "f", "n")


class _Query:
    """The query parameters, parsed as FastAPI (pydantic 2) parses the original's, errors collected."""

    def __init__(self, request: Request) -> None:
        self.params = request.query_params
        self.errors: list[dict[str, Any]] = []

    def flag(self, name: str, default: bool) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self._error("bool_parsing", name, "Input should be a valid boolean, unable to interpret input", value)
        return default

    def number(self, name: str) -> int | None:
        value = self.params.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            self._error("int_parsing", name, "Input should be a valid integer, unable to parse string as an "
                        "integer", value)  # fmt: skip
            return None

    def choice(self, name: str, choices: Sequence[str], default: str | None) -> str | None:
        value = self.params.get(name)
        if value is None:
            return default
        if value not in choices:
            expected = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
            self._error("enum", name, f"Input should be {expected}", value, {"expected": expected})
            return default
        return value

    def text(self, name: str) -> str | None:
        return self.params.get(name) or None

    def _error(self, kind: str, name: str, message: str, value: str, ctx: dict[str, str] | None = None) -> None:
        error: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": message, "input": value}
        if ctx is not None:
            error["ctx"] = ctx
        self.errors.append(error)

    def check(self, upload: object, field: str = "audio_file") -> UploadFile:
        """The upload, once every parameter is valid.

        Raises:
            RequestError: 422 with FastAPI's ``detail`` list naming each bad or missing parameter.
        """
        if not isinstance(upload, UploadFile):
            self.errors.append({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": None})
        if self.errors:
            names = ", ".join(str(e["loc"][-1]) for e in self.errors)
            raise RequestError(422, f"invalid request: {names}", code="validation_error", detail=self.errors)
        assert isinstance(upload, UploadFile)
        return upload


class WebserviceApi:
    """The routes, on the server's :class:`~.gate.Gate`."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def status(self, request: Request) -> Response:
        """``GET /status`` (no key): ``{"version": ...}``, what Bazarr's "Test connection" button shows."""
        return JSONResponse({"version": f"qwen-whisper-server {__version__}", "engine": ENGINE,
                             "model": self.gate.served.name, "status": self.gate.served.state})  # fmt: skip

    async def asr(self, request: Request) -> Response:
        """``POST /asr``."""
        return await self.gate.guard(request, self._asr, _error)

    async def detect_language(self, request: Request) -> Response:
        """``POST /detect-language``: ``{"detected_language": "english", "language_code": "en", "confidence"}``."""
        return await self.gate.guard(request, self._detect, _error)

    async def _asr(self, request: Request) -> Response:
        query = _Query(request)
        encode = query.flag("encode", True)
        task = query.choice("task", TASKS, "transcribe")
        language = query.choice("language", LANGUAGE_CODES, None)
        output = query.choice("output", OUTPUTS, "txt") or "txt"
        word_timestamps = query.flag("word_timestamps", False)
        vad_filter = query.flag("vad_filter", False)
        diarize = query.flag("diarize", False) or query.flag("enable_diarization", False)
        speakers = {"min_speakers": query.number("min_speakers"), "max_speakers": query.number("max_speakers")}
        prompt, hotwords = query.text("initial_prompt"), query.text("hotwords")
        model = self.gate.model(request, keyless=True)
        async with self.gate.form(request) as form:
            upload = query.check(form.get("audio_file"))
            if task == "translate":
                raise RequestError(400, "task=translate is not supported: Qwen3-ASR transcribes speech in its own "
                                   "language and does not translate; send task=transcribe", param="task")  # fmt: skip
            if word_timestamps and not model.has_aligner:
                raise RequestError(400, "word_timestamps=true needs the forced aligner, which this server was "
                                   "started without", param="word_timestamps")  # fmt: skip
            data = await _read(upload)
            options: dict[str, Any] = {"language": language, "initial_prompt": prompt, "word_timestamps": word_timestamps}
            if hotwords:  # faster-whisper's hotwords: context for every chunk, which Qwen3-ASR's context is
                options["context"] = hotwords
            if vad_filter:
                options["vad_filter"] = True
            if diarize:  # speaker labels: segments[].speaker in json (Speakr reads them), [SPEAKER_00]: in text
                options.update(diarize=True, **speakers)

            def job(model: Whisper) -> ResultDict:
                return model.transcribe(_samples(data, encode), **options)

            result = await self.gate.run(job)
        logger.info("/asr: %d segments as %s", len(result["segments"]), output)
        body = io.StringIO()
        WRITERS[output](".").write_result(result, file=body)
        name = upload.filename or "audio_file"
        return Response(body.getvalue(), media_type="text/plain", headers={
            "Asr-Engine": ENGINE, "Content-Disposition": f'attachment; filename="{quote(name)}.{output}"'})  # fmt: skip

    async def _detect(self, request: Request) -> Response:
        query = _Query(request)
        encode = query.flag("encode", True)
        self.gate.model(request, keyless=True)
        async with self.gate.form(request) as form:
            upload = query.check(form.get("audio_file"))
            data = await _read(upload)

            def job(model: Whisper) -> tuple[str, float]:
                probs = model.recognizer.language_probs(_samples(data, encode))  # the first 30 s, as transcribe()
                code = max(probs, key=probs.__getitem__)
                return code, float(probs[code])

            code, confidence = await self.gate.run(job)
        return JSONResponse({"detected_language": LANGUAGES[code], "language_code": code, "confidence": confidence})


async def _read(upload: UploadFile) -> bytes:
    data = await upload.read()
    if not data:
        raise RequestError(400, f"the audio file {upload.filename!r} is empty", param="audio_file")
    return data


def _samples(data: bytes, encode: bool) -> np.ndarray:
    """The upload's 16 kHz samples: decoded as a file (``encode=true``), or raw s16le mono 16 kHz."""
    if encode:
        return load_audio(data)
    if len(data) % 2:
        raise AudioLoadError(f"with encode=false the body must be raw 16-bit PCM (s16le, mono, 16 kHz), an even "
                             f"number of bytes; got {len(data)}: send encode=true for an audio file")  # fmt: skip
    return PcmConverter(16000).convert(data)


def _error(e: RequestError) -> JSONResponse:
    """FastAPI's error body: ``{"detail": "..."}``, or its 422 list."""
    return JSONResponse({"detail": e.detail if e.detail is not None else e.message}, status_code=e.status,
                        headers=e.headers)  # fmt: skip


__all__ = ["ENGINE", "WebserviceApi"]
