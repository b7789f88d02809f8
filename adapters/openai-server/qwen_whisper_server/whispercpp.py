"""whisper.cpp's server API (ggml-org/whisper.cpp ``examples/server/server.cpp`` and its README), which
assistant apps (Amica), Emacs packages and ``ovos-stt-plugin-whispercppserver`` speak: ``POST /inference``
(path changeable, as its ``--inference-path``) and ``POST /load``.

This module owns that contract: its multipart text fields (numbers as ``std::stoi`` / ``std::stof`` read them,
booleans as its ``parse_str_to_bool``: ``true``, ``1``, ``yes``, ``y``), its ``{"error": "..."}`` bodies, its
content types per ``response_format`` and its ``verbose_json`` shape, and the CORS headers it sends (browser
apps call it). Subtitles are the whisper writers' (the bytes ``qwen-whisper -f srt`` writes). Access, the
upload limit and the model thread are :mod:`.gate`'s; ``/inference`` is a host contract, open to the keyless
networks, ``/load`` is not.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from qwen_whisper_compat import QwenWhisperError, Whisper, load_audio
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.results import ResultDict
from qwen_whisper_compat.serving import QueueFull
from qwen_whisper_compat.tokenizer import LANGUAGES
from qwen_whisper_compat.utils import WriteSRT, WriteVTT, speaker_prefix
from qwen_whisper_server.gate import Gate
from qwen_whisper_server.schema import RequestError, language_name, parse_language

logger = logging.getLogger("qwen_whisper_server.whispercpp")

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
CONTENT_TYPES = {"json": "application/json", "verbose_json": "application/json", "text": "text/html; charset=utf-8",
                 "srt": "application/x-subrip", "vtt": "text/vtt"}  # fmt: skip
#: What whisper.cpp sends on every answer, so that browser apps may call it from their own origin.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "content-type, authorization"}
_INTS = ("offset_t", "offset_n", "duration", "max_context", "max_len", "best_of", "beam_size", "vad_speech_pad_ms")
_FLOATS = ("temperature", "temperature_inc", "audio_ctx", "word_thold", "entropy_thold", "logprob_thold",
           "no_speech_thold", "vad_threshold", "vad_min_speech_duration_ms", "vad_min_silence_duration_ms",
           "vad_max_speech_duration_s", "vad_samples_overlap")  # fmt: skip


def parse_bool(value: str) -> bool:
    """whisper.cpp's ``parse_str_to_bool``: ``true``, ``1``, ``yes`` or ``y`` (as written) are true; all else false."""
    return value in ("true", "1", "yes", "y")


class WhisperCppApi:
    """The routes, on the server's :class:`~.gate.Gate`.

    Args:
        gate: The server's access rules, model and model thread.
        load: Loads a model by name or folder for ``POST /load`` (``None``: the server was started without it).
    """

    def __init__(self, gate: Gate, load: Callable[[str], Whisper] | None) -> None:
        self.gate = gate
        self._load = load

    async def inference(self, request: Request) -> Response:
        """``POST /inference`` (or ``--inference-path``); ``OPTIONS`` answers a browser's preflight."""
        if request.method == "OPTIONS":
            return Response(status_code=200, headers=CORS)
        response = await self.gate.guard(request, self._inference, _error)
        response.headers.update(CORS)
        return response

    async def load(self, request: Request) -> Response:
        """``POST /load`` with the multipart field ``model``: a model name or folder to serve from now on."""
        return await self.gate.guard(request, self._swap, _error)

    async def _inference(self, request: Request) -> Response:
        model = self.gate.model(request, keyless=True)
        async with self.gate.form(request) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise RequestError(400, "no 'file' field in the request", param="file")
            fields = _fields(form)
            fmt = fields.get("response_format", "json")
            if fmt not in FORMATS:
                raise RequestError(400, f"response_format {fmt!r} is not supported; use one of {', '.join(FORMATS)}",
                                   param="response_format")  # fmt: skip
            if parse_bool(fields.get("translate", "")):
                raise RequestError(400, "translate is not supported: Qwen3-ASR transcribes speech in its own "
                                   "language and does not translate", param="translate")  # fmt: skip
            numbers = _numbers(fields)
            data = await upload.read()
            if not data:
                raise RequestError(400, f"the audio file {upload.filename!r} is empty", param="file")
            plan = _Plan(fields, numbers, fmt, model.has_aligner)
            result, extra = await self.gate.run(lambda model: plan.run(model, data))
        if fmt == "verbose_json":
            return _json(verbose_json(result, extra, plan))
        text = _text(result)
        if fmt == "json":
            return _json({"text": text})
        if fmt == "text":
            return Response(text, media_type=CONTENT_TYPES["text"])
        writer = WriteSRT(".") if fmt == "srt" else WriteVTT(".")
        body = io.StringIO()
        writer.write_result(result, file=body)
        return Response(body.getvalue(), headers={"Content-Type": CONTENT_TYPES[fmt]})

    async def _swap(self, request: Request) -> Response:
        self.gate.access.check(request)
        async with self.gate.form(request) as form:
            name = form.get("model")
            if not isinstance(name, str) or not name.strip():
                raise RequestError(400, "no 'model' field in the request", param="model")
        if self._load is None:
            raise RequestError(400, "this server was started without model loading", param="model")
        load, served = self._load, self.gate.served
        try:
            await self.gate.admission.submit(lambda: served.replace(lambda: load(name.strip()), name.strip()))
        except QueueFull as e:
            raise RequestError(503, "The server is busy transcribing other requests; retry later.",
                               headers={"Retry-After": str(e.retry_after)}) from e  # fmt: skip
        except QwenWhisperError as e:
            raise RequestError(400, f"model not found! {e}", param="model") from e
        return PlainTextResponse("Load was successful!", media_type="application/text")


class _Plan:
    """What one ``/inference`` request asks of the model."""

    def __init__(self, fields: dict[str, str], numbers: dict[str, float], fmt: str, has_aligner: bool) -> None:
        self.language = parse_language(fields.get("language"))
        self.detect_only = parse_bool(fields.get("detect_language", ""))
        self.no_timestamps = parse_bool(fields.get("no_timestamps", ""))
        timed = fields.get("token_timestamps")
        wanted = parse_bool(timed) if timed is not None else (
            fmt == "verbose_json" or numbers.get("max_len", 0) > 0 or parse_bool(fields.get("split_on_word", "")))
        self.words = wanted and not self.no_timestamps and has_aligner
        self.probabilities = fmt == "verbose_json" and not parse_bool(fields.get("no_language_probabilities", ""))
        temperature = numbers.get("temperature", 0.0)
        step = numbers.get("temperature_inc", 0.2)
        temperatures = [temperature]
        while step > 0 and temperatures[-1] + step <= 1.0 + 1e-6:
            temperatures.append(round(temperatures[-1] + step, 6))
        self.options: dict[str, Any] = {"initial_prompt": fields.get("prompt") or None,
                                        "temperature": tuple(temperatures), "word_timestamps": self.words}  # fmt: skip
        if parse_bool(fields.get("carry_initial_prompt", "")):
            self.options["carry_initial_prompt"] = True
        if numbers.get("max_len", 0) > 0:
            self.options["segment_max_width"] = int(numbers["max_len"])
        if parse_bool(fields.get("vad", "")):
            self.options["vad_filter"] = True
        if parse_bool(fields.get("diarize", "")) or parse_bool(fields.get("tinydiarize", "")):
            self.options["diarize"] = True  # speaker labels from the voices (whisper.cpp's come from stereo channels)
        self.offset = max(0.0, numbers.get("offset_t", 0) / 1000)
        self.duration = max(0.0, numbers.get("duration", 0) / 1000)

    def run(self, model: Whisper, data: bytes) -> tuple[ResultDict, dict[str, Any]]:
        """On the model thread: the result, and the language detection's figures when they were asked for."""
        samples = load_audio(data)
        end = len(samples) if self.duration <= 0 else int((self.offset + self.duration) * SAMPLE_RATE)
        samples = samples[int(self.offset * SAMPLE_RATE) : end]
        extra: dict[str, Any] = {"duration": len(samples) / SAMPLE_RATE}
        language = self.language
        if language is None and (self.detect_only or self.probabilities):
            probs = model.recognizer.language_probs(samples)  # the first 30 s, as transcribe()
            language = max(probs, key=probs.__getitem__)
            extra["probabilities"] = {code: float(p) for code, p in probs.items() if p > 0.001}
            extra["detected"] = language
        if self.detect_only:
            return {"text": "", "segments": [], "language": language or "en"}, extra
        return model.transcribe(samples, language=language, **self.options), extra


def verbose_json(result: ResultDict, extra: dict[str, Any], plan: _Plan) -> dict[str, Any]:
    """whisper.cpp's ``verbose_json`` (its key order; ``words`` carry ``t_dtw`` -1, as without DTW)."""
    segments = []
    for s in result["segments"]:
        segment: dict[str, Any] = {"id": s["id"], "text": s["text"]}
        if not plan.no_timestamps:
            segment.update(start=s["start"], end=s["end"])
        if "speaker" in s:
            segment["speaker"] = s["speaker"]
        segment["tokens"] = list(s["tokens"])
        if plan.words:
            segment["words"] = [{"word": w["word"], "start": w["start"], "end": w["end"], "t_dtw": -1,
                                 "probability": w["probability"]} for w in s.get("words") or ()]  # fmt: skip
        segment.update(temperature=s["temperature"], avg_logprob=s["avg_logprob"], no_speech_prob=s["no_speech_prob"])
        segments.append(segment)
    body: dict[str, Any] = {
        "task": "transcribe", "language": language_name(result["language"]), "duration": extra["duration"],
        "text": _text(result), "segments": segments,
    }  # fmt: skip
    if "detected" in extra:
        body["detected_language"] = LANGUAGES.get(extra["detected"], extra["detected"])
        body["detected_language_probability"] = extra["probabilities"].get(extra["detected"], 0.0)
        body["language_probabilities"] = extra["probabilities"]
    return body


def _text(result: ResultDict) -> str:
    """whisper.cpp's text: each segment's text and a newline (``[SPEAKER_00]: `` first when diarized)."""
    return "".join(speaker_prefix(s) + s["text"] + "\n" for s in result["segments"])


def _fields(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _numbers(fields: dict[str, str]) -> dict[str, float]:
    numbers: dict[str, float] = {}
    for name in (*_INTS, *_FLOATS):
        if name in fields:
            try:
                numbers[name] = int(fields[name]) if name in _INTS else float(fields[name])
            except ValueError:
                kind = "a whole number" if name in _INTS else "a number"
                raise RequestError(400, f"{name} must be {kind}, got {fields[name]!r}", param=name) from None
    return numbers


def _json(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _error(e: RequestError) -> Response:
    """whisper.cpp's error body: ``{"error": "..."}``."""
    return Response(json.dumps({"error": e.message}), status_code=e.status, headers=e.headers,
                    media_type="application/json")  # fmt: skip


__all__ = ["CONTENT_TYPES", "FORMATS", "WhisperCppApi", "parse_bool", "verbose_json"]
