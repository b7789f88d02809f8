"""The OpenAI wire shapes: request options, response bodies and error bodies, built from whisper's result dict.

This module owns the conversion from a ``qwen_whisper_compat`` result (whisper's dict) to what OpenAI's
``/v1/audio/transcriptions`` returns for each ``response_format``; it must not touch HTTP or the model.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from qwen_whisper_compat import UnsupportedOptionError
from qwen_whisper_compat.results import ResultDict, SegmentDict, SegmentFields, WordSpan
from qwen_whisper_compat.tokenizer import LANGUAGES, TO_LANGUAGE_CODE, to_language_code
from qwen_whisper_compat.utils import WriteSRT, WriteVTT

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json", "diarized_json"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")
GRANULARITIES = ("segment", "word")


class ErrorDetail(TypedDict):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(TypedDict):
    """OpenAI's error response body: ``{"error": {...}}``."""

    error: ErrorDetail


class _VerboseRequired(TypedDict):
    task: Literal["transcribe"]
    language: str
    duration: float
    text: str
    #: OpenAI's ``TranscriptionSegment`` has exactly whisper's segment fields, ``words`` excepted.
    segments: list[SegmentFields]


class Verbose(_VerboseRequired, total=False):
    """OpenAI's ``TranscriptionVerbose`` (plus ``task``, which the hosted ``whisper-1`` also returns)."""

    #: OpenAI's ``TranscriptionWord``: whisper's word without its probability.
    words: list[WordSpan]


class ModelCard(TypedDict):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    """OpenAI's list shape for ``GET /v1/models``."""

    object: Literal["list"]
    data: list[ModelCard]


class RequestError(Exception):
    """A request the server refuses; carries the HTTP status and OpenAI's error fields (each contract renders
    it in its own shape: OpenAI's with :meth:`body`, the others from :attr:`message` or :attr:`detail`)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
        detail: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind
        self.headers = dict(headers or {})
        #: A contract's own error body, when it has a structured one (FastAPI's 422 ``detail`` list).
        self.detail = detail

    def body(self) -> ErrorBody:
        """The JSON body OpenAI sends for this error."""
        return error_body(self.message, kind=self.kind, param=self.param, code=self.code)


def error_body(message: str, *, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> ErrorBody:  # fmt: skip
    """``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class TranscriptionRequest:
    """The form fields of ``POST /v1/audio/transcriptions`` that change the result, validated."""

    response_format: ResponseFormat = "json"
    #: A whisper language code (from a code, a name or a tag such as ``en-US``); ``None`` detects the language.
    language: str | None = None
    #: Qwen3-ASR context text (whisper's ``initial_prompt``).
    prompt: str | None = None
    #: OpenAI's meaning: 0 lets the model raise the temperature when decoding fails (whisper's fallback).
    temperature: float = 0.0
    #: Top-level ``words`` in ``verbose_json``: runs the forced aligner.
    words: bool = False
    #: Answer Server-Sent Events (``transcript.text.delta`` as chunks finish, then ``transcript.text.done``).
    stream: bool = False

    def transcribe_options(self) -> dict[str, Any]:
        """Keywords for ``Whisper.transcribe``."""
        fallback = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
        return {
            "language": self.language,
            "initial_prompt": self.prompt,
            "temperature": fallback if self.temperature == 0 else self.temperature,
            "word_timestamps": self.words,
            **({"diarize": True} if self.response_format == "diarized_json" else {}),
        }


def parse_request(fields: Mapping[str, str], granularities: Sequence[str]) -> TranscriptionRequest:
    """Validate the text fields of a transcription request.

    Raises:
        RequestError: An unknown ``response_format``, language or granularity, a temperature outside
            [0, 1], or ``stream=true`` with a subtitle or verbose format.
    """
    response_format = fields.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(
            400, f"response_format {response_format!r} is not supported; use one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format", code="unsupported_value",
        )  # fmt: skip
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown:
        raise RequestError(400, f"timestamp_granularities[] must be 'segment' or 'word', got {unknown[0]!r}",
                           param="timestamp_granularities[]", code="invalid_value")  # fmt: skip
    stream = (fields.get("stream") or "false").lower()
    if stream not in ("true", "false", "1", "0"):
        raise RequestError(400, f"stream must be true or false, got {fields['stream']!r}", param="stream",
                           code="invalid_value")  # fmt: skip
    if stream in ("true", "1") and response_format not in ("json", "text"):
        raise RequestError(400, f"stream=true sends the text as events: use response_format json or text, not "
                           f"{response_format!r}", param="response_format", code="unsupported_value")  # fmt: skip
    return TranscriptionRequest(
        response_format=response_format,
        language=parse_language(fields.get("language")),
        prompt=fields.get("prompt") or None,
        temperature=_temperature(fields.get("temperature")),
        words=response_format == "verbose_json" and "word" in granularities,
        stream=stream in ("true", "1"),
    )


def parse_language(value: str | None) -> str | None:
    """A whisper code for a request's language (a code, a name or a tag such as ``en-US``); ``None`` for none or
    ``auto``.

    Raises:
        RequestError: 400 for a language this package does not know.
    """
    if not value or value.lower() == "auto":
        return None
    try:
        return to_language_code(value)
    except UnsupportedOptionError as e:
        raise RequestError(400, f"{e}; or leave 'language' out to detect it", param="language",
                           code="invalid_value") from e  # fmt: skip


def _temperature(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        temperature = float(value)
    except ValueError:
        temperature = -1.0
    if not 0.0 <= temperature <= 1.0:
        raise RequestError(400, f"temperature must be a number between 0 and 1, got {value!r}",
                           param="temperature", code="invalid_value")  # fmt: skip
    return temperature


def language_name(language: str) -> str:
    """The lowercase English name OpenAI reports (``"english"``) for a whisper code or name."""
    code = language if language in LANGUAGES else TO_LANGUAGE_CODE.get(language.lower(), language)
    return LANGUAGES.get(code, language)


def verbose_json(result: ResultDict, duration: float, words: bool) -> Verbose:
    """OpenAI's ``verbose_json`` for a whisper result; top-level ``words`` when ``words`` is true."""
    segments = result["segments"]
    body: Verbose = {
        "task": "transcribe",
        "language": language_name(result["language"]),
        "duration": duration,
        "text": result["text"].strip(),
        "segments": [_segment(s) for s in segments],
    }
    if words:
        body["words"] = [
            {"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
            for s in segments
            for w in s.get("words") or ()
        ]
    return body


def diarized_json(result: ResultDict, duration: float) -> dict[str, Any]:
    """OpenAI's ``diarized_json`` (``TranscriptionDiarized``): segments with their speakers."""
    return {
        "task": "transcribe",
        "duration": duration,
        "text": result["text"].strip(),
        "segments": [
            {"type": "transcript.text.segment", "id": f"seg_{s['id']}", "start": s["start"], "end": s["end"],
             "text": s["text"].strip(), "speaker": s.get("speaker", "SPEAKER_00")}
            for s in result["segments"]
        ],
    }  # fmt: skip


def _segment(s: SegmentDict) -> SegmentFields:
    return {
        "id": s["id"], "seek": s["seek"], "start": s["start"], "end": s["end"], "text": s["text"],
        "tokens": list(s["tokens"]), "temperature": s["temperature"], "avg_logprob": s["avg_logprob"],
        "compression_ratio": s["compression_ratio"], "no_speech_prob": s["no_speech_prob"],
    }  # fmt: skip


def subtitles(result: ResultDict, response_format: Literal["srt", "vtt"]) -> str:
    """The whisper writer's SRT or WebVTT file for a result."""
    writer = WriteSRT(".") if response_format == "srt" else WriteVTT(".")
    out = io.StringIO()
    writer.write_result(result, out)
    return out.getvalue()
