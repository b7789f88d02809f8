"""OpenAI's Realtime transcription protocol: the session configuration, client events in, server events out.

This module owns the wire shapes only: it parses ``session.update`` (the current form, ``session.type =
"transcription"``) and the older ``transcription_session.update`` into :class:`TranscriptionConfig`, checks
the client events, builds the server events as OpenAI sends them, and says what an item's deltas carry
(:class:`Item`: they only ever append). It knows no model and no socket.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from qwen_whisper_compat import UnsupportedOptionError
from qwen_whisper_compat.segments import is_wide
from qwen_whisper_compat.tokenizer import to_language_code

#: Sample rate of PCM16 in OpenAI's API (G.711 is 8 kHz).
OPENAI_PCM_RATE = 24_000
G711_RATE = 8_000

#: A transcription session's client events.
CLIENT_EVENTS = (
    "session.update", "transcription_session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)  # fmt: skip
#: Pause lengths the ``semantic_vad`` eagerness stands for (run as server VAD: there is no turn model here).
EAGERNESS_SILENCE_MS = {"low": 2000, "medium": 1000, "auto": 1000, "high": 500}
#: Audio between partials (deltas) for OpenAI's ``transcription.delay``; ``None``: finals only (the surest
#: text, and the least CPU).
DELAY_STEP_SECONDS: dict[str, float | None] = {"minimal": 0.5, "low": 1.0, "medium": 2.0, "high": 4.0, "xhigh": None}
#: The shortest buffer a commit takes (OpenAI's rule).
MIN_COMMIT_MS = 100

_GA_FORMATS = {"audio/pcm": "pcm", "audio/pcmu": "mulaw", "audio/pcma": "alaw"}
_BETA_FORMATS = {"pcm16": "pcm", "g711_ulaw": "mulaw", "g711_alaw": "alaw"}


class ProtocolError(Exception):
    """A client event the server refuses; sent back as an OpenAI ``error`` event (the session goes on)."""

    def __init__(self, message: str, *, code: str = "invalid_value", param: str | None = None,
                 event_id: str | None = None, kind: str = "invalid_request_error") -> None:  # fmt: skip
        super().__init__(message)
        self.message, self.code, self.param, self.event_id, self.kind = message, code, param, event_id, kind


@dataclass(frozen=True)
class ServerVad:
    """Turn detection: speech ends at a pause of ``silence_ms``; ``prefix_ms`` of audio is kept before it."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_ms: int = 300
    silence_ms: int = 500
    eagerness: str | None = None

    def live_options(self) -> dict[str, Any]:
        """The live engine's options for this VAD (the padding kept shorter than the pause, as it must be)."""
        silence = self.silence_ms / 1000
        return {"threshold": self.threshold, "min_silence_seconds": silence,
                "pad_seconds": min(self.prefix_ms / 1000, 0.8 * silence)}  # fmt: skip


@dataclass(frozen=True)
class TranscriptionConfig:
    """A transcription session's settings: the input format, the transcription, the turn detection."""

    encoding: Literal["pcm", "mulaw", "alaw"] = "pcm"
    rate: int = OPENAI_PCM_RATE
    model: str | None = None
    language: str | None = None
    prompt: str = ""
    #: OpenAI's ``transcription.delay`` (see :data:`DELAY_STEP_SECONDS`); ``None``: a partial every second.
    delay: str | None = None
    turn_detection: ServerVad | None = ServerVad()
    #: Whether the client spoke the older ``transcription_session`` form (replies use it too).
    beta: bool = False

    def live_options(self) -> dict[str, Any]:
        """The live engine's options for a stream with these settings."""
        live = self.turn_detection.live_options() if self.turn_detection is not None else {}
        if self.delay is not None:
            step = DELAY_STEP_SECONDS[self.delay]
            live.update({"partials": False} if step is None else {"step_seconds": step})
        return live

    # -------------------------------------------------------------------------------------- as sent
    def session(self, session_id: str, model_id: str) -> dict[str, Any]:
        """The session object of ``session.created`` / ``session.updated`` (the effective configuration)."""
        fmt: dict[str, Any] = {"type": {v: k for k, v in _GA_FORMATS.items()}[self.encoding]}
        if self.encoding == "pcm":
            fmt["rate"] = self.rate
        return {
            "type": "transcription", "object": "realtime.transcription_session", "id": session_id,
            "audio": {"input": {
                "format": fmt,
                "transcription": {"model": self.model or model_id, "language": self.language, "prompt": self.prompt,
                                  "delay": self.delay},
                "turn_detection": self._turn_detection(),
                "noise_reduction": None,
            }},
            "include": [],
        }  # fmt: skip

    def beta_session(self, session_id: str, model_id: str) -> dict[str, Any]:
        """The session object of ``transcription_session.updated`` (the older form)."""
        return {
            "id": session_id, "object": "realtime.transcription_session", "modalities": ["text"],
            "input_audio_format": {v: k for k, v in _BETA_FORMATS.items()}[self.encoding],
            "input_audio_transcription": {"model": self.model or model_id, "language": self.language,
                                          "prompt": self.prompt},
            "turn_detection": self._turn_detection(), "input_audio_noise_reduction": None, "include": [],
            "client_secret": None,
        }  # fmt: skip

    def _turn_detection(self) -> dict[str, Any] | None:
        vad = self.turn_detection
        if vad is None:
            return None
        out: dict[str, Any] = {"type": vad.type, "threshold": vad.threshold, "prefix_padding_ms": vad.prefix_ms,
                               "silence_duration_ms": vad.silence_ms}  # fmt: skip
        if vad.eagerness is not None:
            out["eagerness"] = vad.eagerness
        return out


# ----------------------------------------------------------------------------------------- parsing
def apply_update(config: TranscriptionConfig, event: dict[str, Any], languages: Collection[str]) -> TranscriptionConfig:
    """``config`` with a ``session.update`` or ``transcription_session.update`` applied (fields it leaves
    out stay as they are; ``turn_detection: null`` turns detection off).

    Raises:
        ProtocolError: A session that is not a transcription session, a format this server cannot take, a
            language the model does not have, or a malformed field.
    """
    eid = _event_id(event)
    session = event.get("session")
    if not isinstance(session, dict):
        raise ProtocolError("Missing required parameter: 'session'.", code="missing_required_parameter",
                            param="session", event_id=eid)  # fmt: skip
    if event["type"] == "transcription_session.update":
        return _apply_beta(config, session, languages, eid)
    kind = session.get("type", "transcription")
    if kind != "transcription":
        raise ProtocolError(
            f"This server serves transcription sessions only (/v1/realtime?intent=transcription): session.type "
            f"must be 'transcription', got {kind!r}.", param="session.type", event_id=eid,
        )  # fmt: skip
    changes: dict[str, Any] = {"beta": False}
    audio = _object(session, "audio", "session", eid)
    audio_in = _object(audio, "input", "session.audio", eid)
    where = "session.audio.input"
    if audio_in.get("format") is not None:
        fmt = _object(audio_in, "format", where, eid)
        name = fmt.get("type", "audio/pcm")
        if name not in _GA_FORMATS:
            raise ProtocolError(f"Invalid value: {name!r}. Supported values are: 'audio/pcm', 'audio/pcmu' and "
                                "'audio/pcma'.", param=f"{where}.format.type", event_id=eid)  # fmt: skip
        changes["encoding"] = _GA_FORMATS[name]
        rate = fmt.get("rate", OPENAI_PCM_RATE) if name == "audio/pcm" else G711_RATE
        if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192_000:
            raise ProtocolError(f"Invalid value: {rate!r}. The PCM rate must be a whole number of Hz from 8000 "
                                "to 192000 (OpenAI's is 24000).", param=f"{where}.format.rate", event_id=eid)  # fmt: skip
        changes["rate"] = rate
    if "transcription" in audio_in:
        changes.update(_transcription(audio_in.get("transcription"), f"{where}.transcription", languages, eid))
    if "turn_detection" in audio_in:
        changes["turn_detection"] = _turn_detection(audio_in["turn_detection"], f"{where}.turn_detection", eid)
    return dataclasses.replace(config, **changes)


def _apply_beta(config: TranscriptionConfig, session: dict[str, Any], languages: Collection[str],
                eid: str | None) -> TranscriptionConfig:  # fmt: skip
    changes: dict[str, Any] = {"beta": True}
    if session.get("input_audio_format") is not None:
        name = session["input_audio_format"]
        if name not in _BETA_FORMATS:
            raise ProtocolError(f"Invalid value: {name!r}. Supported values are: 'pcm16', 'g711_ulaw' and "
                                "'g711_alaw'.", param="session.input_audio_format", event_id=eid)  # fmt: skip
        changes["encoding"] = _BETA_FORMATS[name]
        changes["rate"] = OPENAI_PCM_RATE if name == "pcm16" else G711_RATE
    if "input_audio_transcription" in session:
        changes.update(_transcription(session["input_audio_transcription"], "session.input_audio_transcription",
                                      languages, eid))  # fmt: skip
    if "turn_detection" in session:
        changes["turn_detection"] = _turn_detection(session["turn_detection"], "session.turn_detection", eid)
    return dataclasses.replace(config, **changes)


def _transcription(value: Any, where: str, languages: Collection[str], eid: str | None) -> dict[str, Any]:
    if value is None:
        return {"model": None, "language": None, "prompt": "", "delay": None}
    if not isinstance(value, dict):
        raise ProtocolError(f"Invalid type for '{where}': expected an object.", code="invalid_type", param=where,
                            event_id=eid)  # fmt: skip
    language = value.get("language") or None
    if language is not None:
        try:
            language = to_language_code(language, languages)
        except UnsupportedOptionError as e:
            raise ProtocolError(
                f"Invalid value: {language!r}. This model transcribes the languages {', '.join(sorted(languages))} "
                "(ISO-639-1 codes; tags such as 'en-US' work too), or leave 'language' out to detect it.",
                param=f"{where}.language", event_id=eid,
            ) from e  # fmt: skip
    prompt = value.get("prompt") or ""
    if not isinstance(prompt, str):
        raise ProtocolError(f"Invalid type for '{where}.prompt': expected a string.", code="invalid_type",
                            param=f"{where}.prompt", event_id=eid)  # fmt: skip
    delay = value.get("delay")
    if delay is not None and delay not in DELAY_STEP_SECONDS:
        raise ProtocolError(f"Invalid value: {delay!r}. Supported values are: 'minimal', 'low', 'medium', 'high' and "
                            "'xhigh'.", param=f"{where}.delay", event_id=eid)  # fmt: skip
    model = value.get("model")
    return {"model": model if isinstance(model, str) else None, "language": language, "prompt": prompt,
            "delay": delay}  # fmt: skip


def _turn_detection(value: Any, where: str, eid: str | None) -> ServerVad | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(f"Invalid type for '{where}': expected an object or null.", code="invalid_type",
                            param=where, event_id=eid)  # fmt: skip
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise ProtocolError(f"Invalid value: {kind!r}. Supported values are: 'server_vad' and 'semantic_vad'.",
                            param=f"{where}.type", event_id=eid)  # fmt: skip
    threshold = value.get("threshold", 0.5)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ProtocolError(f"Invalid value: {threshold!r}. 'threshold' must be within (0, 1].",
                            param=f"{where}.threshold", event_id=eid)  # fmt: skip
    prefix = _milliseconds(value.get("prefix_padding_ms", 300), f"{where}.prefix_padding_ms", 0, eid)
    if kind == "semantic_vad":
        eagerness = value.get("eagerness") or "auto"
        if eagerness not in EAGERNESS_SILENCE_MS:
            raise ProtocolError(f"Invalid value: {eagerness!r}. Supported values are: 'low', 'medium', 'high' and "
                                "'auto'.", param=f"{where}.eagerness", event_id=eid)  # fmt: skip
        return ServerVad("semantic_vad", float(threshold), prefix, EAGERNESS_SILENCE_MS[eagerness], eagerness)
    silence = _milliseconds(value.get("silence_duration_ms", 500), f"{where}.silence_duration_ms", 100, eid)
    return ServerVad("server_vad", float(threshold), prefix, silence)


def _milliseconds(value: Any, where: str, least: int, eid: str | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= 10_000:
        raise ProtocolError(f"Invalid value: {value!r}. '{where.rsplit('.', 1)[-1]}' must be a whole number of "
                            f"milliseconds from {least} to 10000.", param=where, event_id=eid)  # fmt: skip
    return value


def _object(parent: dict[str, Any], key: str, where: str, eid: str | None) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError(f"Invalid type for '{where}.{key}': expected an object.", code="invalid_type",
                            param=f"{where}.{key}", event_id=eid)  # fmt: skip
    return value


def _event_id(event: dict[str, Any]) -> str | None:
    eid = event.get("event_id")
    return eid if isinstance(eid, str) else None


def check_event(event: Any) -> dict[str, Any]:
    """A client event as a dict with a known ``type``.

    Raises:
        ProtocolError: Not an object, no type, or a type a transcription session does not take.
    """
    if not isinstance(event, dict):
        raise ProtocolError("The event must be a JSON object.", code="invalid_type")
    kind = event.get("type")
    eid = _event_id(event)
    if not isinstance(kind, str):
        raise ProtocolError("Missing required parameter: 'type'.", code="missing_required_parameter", param="type",
                            event_id=eid)  # fmt: skip
    if kind not in CLIENT_EVENTS:
        raise ProtocolError(
            f"Invalid value: {kind!r}. A transcription session takes the events "
            f"{', '.join(repr(e) for e in CLIENT_EVENTS)}.", param="type", event_id=eid,
        )  # fmt: skip
    return event


# ----------------------------------------------------------------------------------------- server events
def new_id(prefix: str) -> str:
    """An id in OpenAI's style (``event_...``, ``item_...``, ``sess_...``)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def server_event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event with a fresh ``event_id``."""
    return {"type": kind, "event_id": new_id("event"), **fields}


def error_event(e: ProtocolError) -> dict[str, Any]:
    """OpenAI's ``error`` event for a refused client event."""
    return server_event("error", error={"type": e.kind, "code": e.code, "message": e.message, "param": e.param,
                                        "event_id": e.event_id})  # fmt: skip


# ----------------------------------------------------------------------------------------- transcripts
class Item:
    """A conversation item being transcribed: its id and the text its deltas have carried."""

    def __init__(self, start: float) -> None:
        self.id = new_id("item")
        self.start = start
        self.sent = ""

    def delta(self, text: str, final: bool) -> str:
        """The text to send for ``text`` (a partial's: up to its last word), if it extends what was sent."""
        target = text if final else stable_text(text)
        if len(target) > len(self.sent) and target.startswith(self.sent):
            piece, self.sent = target[len(self.sent) :], target
            return piece
        return ""


def milliseconds(seconds: float) -> int:
    """Seconds as the whole milliseconds of OpenAI's ``audio_start_ms`` / ``audio_end_ms``."""
    return round(seconds * 1000)


def stable_text(text: str) -> str:
    """A partial's text without its last word (for text without spaces, its last character), which the next
    partial may still change: what a delta may carry."""
    text = text.rstrip()
    if any(is_wide(c) for c in text):
        return text[:-1]
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut] if cut > 0 else ""


def join_text(a: str, b: str) -> str:
    """Two transcript pieces joined as the language writes them: a space between words, none beside CJK."""
    if not a or not b:
        return a or b
    return a + b if is_wide(a[-1]) or is_wide(b[0]) else f"{a} {b}"


__all__ = [
    "CLIENT_EVENTS", "MIN_COMMIT_MS", "OPENAI_PCM_RATE", "Item", "ProtocolError", "ServerVad", "TranscriptionConfig",
    "apply_update", "check_event", "error_event", "join_text", "milliseconds", "new_id", "server_event",
    "stable_text",
]  # fmt: skip
