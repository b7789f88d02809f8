"""The Realtime transcription endpoint of the OpenAI-compatible server (``/v1/realtime?intent=transcription``),
driven by the official ``openai`` client (``client.realtime.connect``, over ``websockets``) on loopback.

One ``qwen-whisper-server`` process (its console script, the tiny random models through the mirror hub) runs
for the module with one live session allowed. Transcripts are compared with the live engine in-process
(``model.stream``) fed the same audio decoded independently of the server's PCM converter: the PCM as a WAV
file through ``load_audio`` (libswresample behind PyAV's decoder, where the server's converter streams it).

The failure tests run the server's application in this process (uvicorn on a loopback port, in a thread)
around the tiny model, whose live streams can be made to fail as the engine does ("... exceed the context").
Every wait on a server is bounded.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import openai
import pytest
import uvicorn
import websockets  # the client's transport (a missing one fails here)
import websockets.exceptions
from qwc_fixtures import free_port

import qwen_whisper_compat
from compat_tests.test_openai_server import THREADS, Server, running_server, server_script  # noqa: F401
from qwen_whisper_compat import load_audio

API_KEY = "sk-test-qwen-whisper-realtime"
RATE = 24_000
PIECE = RATE // 10  # 100 ms
#: The server VAD settings the sessions below ask for (OpenAI's defaults).
VAD = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
LIVE = {"threshold": 0.5, "min_silence_seconds": 0.5, "pad_seconds": 0.3}
#: Every wait on the server is bounded by this.
TIMEOUT = 60.0

# the openai client opens its websockets connection without a context manager; websockets 17 warns about it
pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")


@pytest.fixture(scope="module")
def server(
    server_script: Path,  # noqa: F811
    model_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    args = ["--api-key", API_KEY, "--max-live-sessions", "1", "--max-upload-mb", "4", "--threads", str(THREADS)]
    with running_server(server_script, model_env, tmp_path_factory.mktemp("realtime"), args) as server:
        yield server


@pytest.fixture(scope="module")
def jfk_pcm(shared_audio: Path) -> bytes:
    """jfk.flac as OpenAI's input format: PCM16 little-endian mono at 24 kHz."""
    samples = load_audio(shared_audio / "jfk.flac", sr=RATE)
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _pieces(pcm: bytes, size: int = PIECE * 2) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def _decoded(pcm: bytes, folder: Path) -> np.ndarray:
    """``pcm`` (PCM16 mono at ``RATE``) at 16 kHz, as a WAV file through ``load_audio``: not the server's code."""
    path = folder / "sent.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return load_audio(path)


@pytest.fixture(scope="module")
def live_reference(under_model_env: Any, jfk_pcm: bytes, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The live engine's speech finals for jfk.flac as the server hears it, with the VAD settings above."""
    model = under_model_env(qwen_whisper_compat.load_model, "base", threads=THREADS)
    try:
        with model.stream(language="en", partials=False, **LIVE) as stream:
            samples = _decoded(jfk_pcm, tmp_path_factory.mktemp("realtime-reference"))
            events = [e for i in range(0, len(samples), 1600) for e in stream.feed(samples[i : i + 1600])]
            events += stream.finish()
    finally:
        model.close()
    finals = [e for e in events if e.type == "final" and e.speech]
    assert finals and any(f.text for f in finals), "the tiny model always says something"
    return finals


def _client(server: Server, api_key: str = API_KEY) -> Any:
    return openai.OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0, timeout=TIMEOUT)


def _connect(server: Server, api_key: str = API_KEY) -> Any:
    return _client(server, api_key).realtime.connect(extra_query={"intent": "transcription"})


def _idle(server: Server) -> dict[str, Any]:
    """/health once no live session is open (bounded wait): the previous test's session has been freed."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        health = server.get("/health")[1]
        if health["live_sessions"] == 0:
            return health
        assert time.monotonic() < deadline, f"a live session was never freed: {health}\n{server.log_text()}"
        time.sleep(0.1)


def _recv_raw(connection: Any) -> bytes:
    """The next message the server sent (bounded: ``TimeoutError`` after ``TIMEOUT``). Through the client's
    WebSocket, since ``connection.recv()`` waits without a bound."""
    raw: bytes = connection._connection.recv(timeout=TIMEOUT, decode=False)
    return raw


def _recv(connection: Any) -> dict[str, Any]:
    """The next server event as the JSON the server sent."""
    event: dict[str, Any] = json.loads(_recv_raw(connection))
    return event


def _parsed(connection: Any) -> Any:
    """The next server event parsed by the client into its own types (``connection.recv()``, bounded)."""
    return connection.parse_event(_recv_raw(connection))


def _until(connection: Any, kind: str) -> list[dict[str, Any]]:
    """Server events up to and including the first of type ``kind``."""
    events = []
    deadline = time.monotonic() + TIMEOUT
    while not events or events[-1]["type"] != kind:
        assert time.monotonic() < deadline, f"no {kind} event within {TIMEOUT} s: {events}"
        events.append(_recv(connection))
    return events


def _session_update(turn_detection: dict[str, Any] | None, language: str = "en") -> dict[str, Any]:
    return {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": RATE},
        "transcription": {"model": "gpt-4o-transcribe", "language": language},
        "turn_detection": turn_detection,
    }}}}  # fmt: skip


def _send_audio(connection: Any, pcm: bytes) -> None:
    for piece in _pieces(pcm):
        connection.input_audio_buffer.append(audio=base64.b64encode(piece).decode())


def _errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["error"] for e in events if e["type"] == "error"]


# ------------------------------------------------------------------------------------------------- the stream
def _stream_jfk(server: Server, jfk_pcm: bytes, delay: str | None, pace: float | None) -> list[Any]:
    """Stream jfk.flac with server VAD (``pace``: times real time, ``None``: as fast as it goes), commit the
    last segment, and return every server event the client parsed, up to the barrier (``cleared``)."""
    with _connect(server) as connection:
        created = _parsed(connection)  # parsed by the client into its own types
        assert created.type == "session.created" and created.session.type == "transcription"
        update = _session_update(VAD)
        update["session"]["audio"]["input"]["transcription"]["delay"] = delay
        connection.send(update)
        updated = _parsed(connection)
        assert updated.type == "session.updated"
        assert updated.session.audio.input.format.rate == RATE
        assert updated.session.audio.input.turn_detection.type == "server_vad"
        t0 = time.monotonic()
        for k, piece in enumerate(_pieces(jfk_pcm)):
            if pace is not None:
                time.sleep(max(0.0, t0 + k * 0.1 / pace - time.monotonic()))
            connection.input_audio_buffer.append(audio=base64.b64encode(piece).decode())
        connection.input_audio_buffer.commit()  # ends the last segment now, without waiting for a pause
        connection.input_audio_buffer.clear()  # its "cleared" comes after everything the commit caused
        events: list[Any] = []
        deadline = time.monotonic() + TIMEOUT
        while not events or events[-1].type != "input_audio_buffer.cleared":
            assert time.monotonic() < deadline
            events.append(_parsed(connection))
    assert not [e for e in events if e.type == "error"], events
    return events


def _check_items(events: list[Any], reference: list[Any]) -> list[Any]:
    """Every item in order: speech started, its deltas, speech stopped, committed, completed, at the live
    engine's segment bounds. Returns the completed events."""
    completed = [e for e in events if e.type == "conversation.item.input_audio_transcription.completed"]
    assert len(completed) == len(reference)
    previous = None
    for done, final in zip(completed, reference, strict=True):
        mine = [e for e in events if getattr(e, "item_id", None) == done.item_id]
        kinds = [e.type for e in mine]
        assert kinds[0] == "input_audio_buffer.speech_started" and kinds[-1].endswith(".completed"), kinds
        stopped = kinds.index("input_audio_buffer.speech_stopped")
        assert stopped < kinds.index("input_audio_buffer.committed")
        assert all(k.endswith(".delta") for k in kinds[1:stopped]), kinds
        committed = next(e for e in mine if e.type == "input_audio_buffer.committed")
        assert committed.previous_item_id == previous
        previous = done.item_id
        start = next(e for e in mine if e.type == "input_audio_buffer.speech_started").audio_start_ms
        stop = mine[stopped].audio_end_ms
        assert (start, stop) == (round(final.start * 1000), round(final.end * 1000))
        assert done.usage.seconds == pytest.approx(final.end - final.start, abs=1e-3)
    return completed


def test_finals_stream_equals_the_live_engine(server: Server, jfk_pcm: bytes, live_reference: list[Any]) -> None:
    """jfk.flac as PCM16 at 24 kHz in 100 ms pieces, finals only (``delay: "xhigh"``): an item per speech
    segment, its text as one delta, and completed transcripts equal to the live engine's finals."""
    _idle(server)
    events = _stream_jfk(server, jfk_pcm, "xhigh", pace=None)
    completed = _check_items(events, live_reference)
    assert [e.transcript for e in completed] == [f.text for f in live_reference]
    deltas = [e for e in events if e.type == "conversation.item.input_audio_transcription.delta"]
    assert [d.delta for d in deltas] == [f.text for f in live_reference if f.text]


def test_partials_stream_as_deltas(server: Server, jfk_pcm: bytes, live_reference: list[Any]) -> None:
    """The default delay, audio at twice real time: the partials arrive as deltas while each segment is
    spoken, before its final. (A final on the random tiny model may differ from the finals-only run in its
    tokens: the logits are flat, and the draft verification rounds differently; real models agree.)"""
    _idle(server)
    events = _stream_jfk(server, jfk_pcm, None, pace=2.0)
    completed = _check_items(events, live_reference)
    early = []  # deltas sent while the item was still being spoken (from partials)
    for done in completed:
        mine = [e.type for e in events if getattr(e, "item_id", None) == done.item_id]
        early += [k for k in mine[: mine.index("input_audio_buffer.speech_stopped")] if k.endswith(".delta")]
    assert early, "the partials must arrive as deltas before their segment ends"


def test_without_turn_detection_a_commit_is_one_item(server: Server, jfk_pcm: bytes, live_reference: list[Any]) -> None:
    """``turn_detection: null``: the client commits; the item is everything appended before it."""
    _idle(server)
    with _connect(server) as connection:
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: len(jfk_pcm) // 2])
        connection.input_audio_buffer.commit()
        first = _until(connection, "conversation.item.input_audio_transcription.completed")
        connection.input_audio_buffer.commit()  # an empty buffer: OpenAI's error, the session goes on
        empty = _until(connection, "error")
        _send_audio(connection, jfk_pcm[len(jfk_pcm) // 2 :])
        connection.input_audio_buffer.commit()
        second = _until(connection, "conversation.item.input_audio_transcription.completed")
    assert not _errors(first) and not _errors(second)
    assert _errors(empty)[0]["code"] == "input_audio_buffer_commit_empty"
    for events in (first, second):
        kinds = [e["type"] for e in events]
        assert "input_audio_buffer.speech_started" not in kinds
        committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
        assert {e["item_id"] for e in events if "item_id" in e} == {committed["item_id"]}
    assert next(e for e in second if e["type"] == "input_audio_buffer.committed")["previous_item_id"] == \
        first[-1]["item_id"]  # fmt: skip
    total = first[-1]["usage"]["seconds"] + second[-1]["usage"]["seconds"]
    assert total == pytest.approx(len(jfk_pcm) / 2 / RATE, abs=0.01)
    assert first[-1]["transcript"] and second[-1]["transcript"]


def test_older_transcription_session_update(server: Server, jfk_pcm: bytes) -> None:
    """The beta ``transcription_session.update`` (``input_audio_format: pcm16``) is answered in its own form."""
    _idle(server)
    with _connect(server) as connection:
        assert _recv(connection)["type"] == "session.created"
        connection.send_raw(json.dumps({"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16", "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": None,
        }}))  # fmt: skip
        updated = _recv(connection)
        assert updated["type"] == "transcription_session.updated"
        assert updated["session"]["input_audio_format"] == "pcm16"
        assert updated["session"]["turn_detection"] is None
        _send_audio(connection, jfk_pcm[: RATE * 2 * 3])
        connection.input_audio_buffer.commit()
        events = _until(connection, "conversation.item.input_audio_transcription.completed")
    assert not _errors(events) and events[-1]["transcript"]


def test_deltas_only_append_and_wide_text_is_cut_by_character(server_script: Path) -> None:  # noqa: F811
    """What an item's deltas carry: a partial up to its last word, for text without spaces (the package's one
    wide-character test, ``segments.is_wide``) up to its last character; never a revision of what was sent."""
    from qwen_whisper_server.realtime_schema import Item, join_text, stable_text

    assert stable_text("and so my fellow ame") == "and so my fellow"
    assert stable_text("我们用语音识") == "我们用语音" and stable_text("ＡＢＣ") == "ＡＢ"  # fullwidth counts as wide
    assert join_text("ask not", "what") == "ask not what" and join_text("我们", "识别") == "我们识别"
    assert join_text("Qwen", "识别") == "Qwen识别" and join_text("", "x") == "x"
    item = Item(0.0)
    assert item.delta("and so my fel", final=False) == "and so my"
    assert item.delta("and so my fellow", final=False) == ""  # "fellow" may still change
    assert item.delta("and so, my fellow Americans", final=False) == ""  # a revision: nothing more is sent
    assert item.delta("and so my fellow Americans", final=True) == " fellow Americans"
    assert item.sent == "and so my fellow Americans"


# ------------------------------------------------------------------------------------------------- bad input
def test_bad_events_get_openai_errors_and_the_session_goes_on(server: Server, jfk_pcm: bytes) -> None:
    _idle(server)
    with _connect(server) as connection:
        _until(connection, "session.created")
        bad = [
            ("{not json", "invalid_json", None),
            (json.dumps({"type": "response.create", "event_id": "e1"}), "invalid_value", "type"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": "***", "event_id": "e2"}), "invalid_value",
             "audio"),
            (json.dumps({"type": "input_audio_buffer.append", "event_id": "e3"}), "missing_required_parameter",
             "audio"),
            (json.dumps({"type": "session.update", "session": {"type": "realtime"}}), "invalid_value", "session.type"),
            (json.dumps(_session_update(None, language="xx")), "invalid_value",
             "session.audio.input.transcription.language"),
            (json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/opus"}}}}}), "invalid_value", "session.audio.input.format.type"),
        ]  # fmt: skip
        for raw, code, param in bad:
            connection.send_raw(raw)
            error = _recv(connection)
            assert error["type"] == "error", error
            assert (error["error"]["code"], error["error"]["param"]) == (code, param), error
            assert error["error"]["type"] == "invalid_request_error" and error["error"]["message"]
        assert error["error"]["event_id"] is None
        connection.send_raw(json.dumps({"type": "response.create", "event_id": "mine"}))
        assert _recv(connection)["error"]["event_id"] == "mine"
        # the session still works
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: RATE * 2 * 2])
        connection.input_audio_buffer.commit()
        assert _until(connection, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]


def test_api_key_is_required(server: Server) -> None:
    _idle(server)
    with _connect(server, api_key="sk-wrong") as connection:
        error = _recv(connection)
        assert error["type"] == "error" and error["error"]["code"] == "invalid_api_key"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            _recv(connection)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008  # policy violation


def test_intent_must_be_transcription(server: Server) -> None:
    _idle(server)
    with _client(server).realtime.connect(model="gpt-realtime") as connection:
        error = _recv(connection)
    assert error["type"] == "error" and error["error"]["param"] == "intent"


# ------------------------------------------------------------------------------------------------- resources
def test_session_limit_and_a_client_that_vanishes(server: Server, jfk_pcm: bytes) -> None:
    """One live session allowed: a second connection gets an error event (not a hang); a client that drops
    its socket mid-stream frees its session, and the next client is served."""
    _idle(server)
    with _connect(server) as first:
        _until(first, "session.created")
        first.send(_session_update(VAD))
        _until(first, "session.updated")
        _send_audio(first, jfk_pcm[: RATE * 2 * 4])
        assert server.get("/health")[1]["live_sessions"] == 1
        with _connect(server) as second:
            error = _recv(second)
        assert error["type"] == "error" and error["error"]["code"] == "session_limit_reached"
        raw = first._connection.socket
        raw.shutdown(socket.SHUT_RDWR)  # vanish: no close handshake
        raw.close()
    _idle(server)
    with _connect(server) as third:
        third.send(_session_update(None))
        _until(third, "session.updated")
        _send_audio(third, jfk_pcm[: RATE * 2 * 2])
        third.input_audio_buffer.commit()
        assert _until(third, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]


def test_http_and_realtime_share_one_model(server: Server, shared_audio: Path, jfk_pcm: bytes) -> None:
    _idle(server)
    with _connect(server) as connection:
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: RATE * 2 * 2])
        with (shared_audio / "jfk.flac").open("rb") as f:
            text = _client(server).audio.transcriptions.create(model="whisper-1", file=f, language="en").text
        connection.input_audio_buffer.commit()
        events = _until(connection, "conversation.item.input_audio_transcription.completed")
        health = server.get("/health")[1]
    assert text and events[-1]["transcript"]
    assert health["live_sessions"] == 1 and health["transcriptions"] >= 1
    assert server.log_text().count("loaded model base") == 1


# ------------------------------------------------------------------------------------------------- failures
class _Faults:
    """What the in-process server's live streams do wrong: the next ``feeds`` calls of ``feed`` raise the
    engine's context error (any stream of the model)."""

    def __init__(self) -> None:
        self.feeds = 0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.feeds <= 0:
                return False
            self.feeds -= 1
            return True


@pytest.fixture(scope="module")
def in_process(server_script: Path, under_model_env: Any) -> Iterator[tuple[Server, _Faults]]:  # noqa: F811
    """The server's application around the tiny model in this process, on a loopback port (uvicorn in a thread),
    with no API key and one live session; its streams fail on demand (:class:`_Faults`)."""
    from qwen_whisper_server.app import ServerOptions, create_app

    model = under_model_env(qwen_whisper_compat.load_model, "base", threads=THREADS, aligner=False)
    faults = _Faults()
    real_stream = model.stream

    def stream(*args: Any, **kwargs: Any) -> Any:
        opened = real_stream(*args, **kwargs)
        feed = opened.feed

        def failing_feed(samples: np.ndarray) -> Any:
            if faults.take():  # what GGUFDecoder.generate raises for a prompt that outgrows the context
                raise ValueError("2100 prompt + 448 new tokens exceed the context of 2048")
            return feed(samples)

        opened.feed = failing_feed
        return opened

    port = free_port()
    app = create_app(model, ServerOptions(model_id="base", max_live_sessions=1))
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, ws="websockets-sansio"))
    thread = threading.Thread(target=uv.run, name="in-process server")
    with mock.patch.object(model, "stream", stream):
        thread.start()
        try:
            deadline = time.monotonic() + TIMEOUT
            while not uv.started:
                assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
                time.sleep(0.05)
            yield Server(None, port, Path(os.devnull)), faults  # type: ignore[arg-type]
        finally:
            uv.should_exit = True
            thread.join(TIMEOUT)
            model.close()
    assert not thread.is_alive()


def test_a_failing_step_is_an_error_event_and_the_session_goes_on(
    in_process: tuple[Server, _Faults], jfk_pcm: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The live stream raises (a ``ValueError``, not one of the package's errors) on its first step: the client
    gets an ``error`` event saying so, the server logs it with its traceback, and the same connection then
    transcribes the next audio it commits."""
    server, faults = in_process
    _idle(server)
    faults.feeds = 1
    with caplog.at_level(logging.ERROR, logger="qwen_whisper_server"), _connect(server) as connection:
        _until(connection, "session.created")
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: PIECE * 2])  # 100 ms: the step that fails
        failed = _until(connection, "error")
        _send_audio(connection, jfk_pcm[RATE * 2 : RATE * 2 * 3])  # 2 s more: a new stream
        connection.input_audio_buffer.commit()
        after = _until(connection, "conversation.item.input_audio_transcription.completed")
    error = _errors(failed)[0]
    assert (error["type"], error["code"]) == ("server_error", "transcription_failed")
    assert "ValueError" in error["message"] and "exceed the context" in error["message"]
    assert not _errors(after) and after[-1]["transcript"]
    assert after[-1]["usage"]["seconds"] == pytest.approx(2.0, abs=0.01), "the failed step's audio was dropped"
    logged = [r for r in caplog.records if "transcription failed" in r.getMessage()]
    assert logged and logged[0].exc_info is not None and logged[0].exc_info[0] is ValueError
    assert faults.feeds == 0


def test_a_session_whose_processing_stops_is_closed_with_1011(
    in_process: tuple[Server, _Faults], jfk_pcm: bytes
) -> None:
    """Should reporting a failure fail too, the processing of the session stops: the client gets an ``error``
    event and the close code 1011 (not a session that hangs), and the next connection is served."""
    from qwen_whisper_server.realtime_connection import Connection

    server, faults = in_process
    _idle(server)
    faults.feeds = 1
    failing_report = mock.patch.object(Connection, "_failed", side_effect=RuntimeError("reporting failed too"))
    with failing_report, _connect(server) as connection:
        _until(connection, "session.created")
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: PIECE * 2])
        events = _until(connection, "error")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            _recv(connection)
    error = _errors(events)[0]
    assert (error["type"], error["code"]) == ("server_error", "internal_error") and "RuntimeError" in error["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    _idle(server)
    with _connect(server) as connection:
        connection.send(_session_update(None))
        _until(connection, "session.updated")
        _send_audio(connection, jfk_pcm[: RATE * 2 * 2])
        connection.input_audio_buffer.commit()
        assert _until(connection, "conversation.item.input_audio_transcription.completed")[-1]["transcript"]
