"""The OpenAI-compatible server (adapters/openai-server), installed as a user would and driven over loopback by
the official ``openai`` client: every response format, concurrency, bad uploads, the API key, and the port
answering 503 while the model loads.

One server runs for the module, in a subprocess (its ``qwen-whisper-server`` console script) with ``--model
base``, which the ``model_env`` fixture resolves to the tiny random models; answers are compared with the same
model in-process. The loading tests start servers of their own whose model load waits for the test
(tests/gated_source.py, a model-source plugin).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import python_multipart  # noqa: F401  (the server's dependencies: imported so a missing one fails here, not in a subprocess)
import srt
import starlette  # noqa: F401
import uvicorn  # noqa: F401
import websockets.exceptions
from gated_source import plugin_env
from qwc_fixtures import free_port, install_distribution, server_process

import qwen_whisper_compat
from qwen_whisper_compat import load_audio
from qwen_whisper_compat.tokenizer import LANGUAGES
from qwen_whisper_compat.utils import WriteVTT

ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "openai-server"
API_KEY = "sk-test-qwen-whisper-server"
SEGMENT_KEYS = {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio",
                "no_speech_prob"}  # fmt: skip
ERROR_KEYS = {"message", "type", "param", "code"}
RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


@dataclass
class Server:
    """A ``qwen-whisper-server`` process on a loopback port, with its combined log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key: str = API_KEY) -> Any:
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, timeout=120)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """A raw GET (no client-side defaults): status and JSON body."""
        return _get(self.port, path, headers)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def server_script() -> Path:
    install_distribution(ADAPTER)
    script = Path(sys.executable).parent / ("qwen-whisper-server" + (".exe" if os.name == "nt" else ""))
    assert script.is_file(), "installing the adapter must create the qwen-whisper-server console script"
    return script


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextlib.contextmanager
def running_server(script: Path, env: dict[str, str], folder: Path, args: list[str]) -> Iterator[Server]:
    """A ``qwen-whisper-server --model base`` process on a free loopback port, once ``/health`` answers."""
    port = free_port()
    log = folder / "server.log"
    command = [str(script), "--model", "base", "--port", str(port), *args]
    with server_process(command, env, log, lambda: _get(port, "/health")[0] == 200) as process:
        yield Server(process, port, log)


@pytest.fixture(scope="module")
def server(
    server_script: Path, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """An API key, uploads up to 2 MiB (jfk.flac is 1.1 MB), one request may wait behind the running one."""
    args = ["--api-key", API_KEY, "--max-upload-mb", "2", "--max-queue", "1", "--threads", str(THREADS)]
    with running_server(server_script, model_env, tmp_path_factory.mktemp("server"), args) as server:
        yield server


@pytest.fixture(scope="module")
def jfk_path(shared_audio: Path) -> Path:
    return shared_audio / "jfk.flac"


@pytest.fixture(scope="module")
def clip(shared_audio: Path) -> tuple[str, bytes, str]:
    """The first 5 s of jfk.flac as a wav upload (shorter than jfk for speed)."""
    return ("clip.wav", _wav_bytes(load_audio(shared_audio / "jfk.flac")[: 5 * 16000]), "audio/wav")


#: Inference threads of the server (and of the in-process reference). One thread keeps a busy 2-core machine
#: from slowing the tiny model down tenfold (spinning threads waiting for a descheduled one).
THREADS = 1

#: The temperature the compared requests ask for. OpenAI's default, 0, means whisper's temperature fallback,
#: which on the random tiny model always runs all six decodes; one seeded decode is six times faster.
TEMPERATURE = 0.2


@pytest.fixture(scope="module")
def reference(under_model_env: Any, clip: tuple[str, bytes, str]) -> dict[str, Any]:
    """What the same model says in-process about ``clip``, with the options the requests below derive."""
    model = under_model_env(qwen_whisper_compat.load_model, "base", threads=THREADS)
    try:
        result: dict[str, Any] = model.transcribe(clip[1], language="en", temperature=TEMPERATURE)
    finally:
        model.close()
    assert result["text"].strip(), "the tiny model always says something"
    return result


def _error_of(e: Any) -> dict[str, Any]:
    body = e.response.json()
    assert set(body) == {"error"} and set(body["error"]) == ERROR_KEYS, body
    error: dict[str, Any] = body["error"]
    return error


def test_models_lists_the_one_model(server: Server) -> None:
    models = server.client().models.list()
    assert [m.id for m in models.data] == ["base"]
    assert models.data[0].object == "model"
    assert server.client().models.retrieve("base").id == "base"


def test_json_and_text(server: Server, clip: tuple[str, bytes, str], reference: dict[str, Any]) -> None:
    client = server.client()
    common: dict[str, Any] = {"model": "whisper-1", "file": clip, "language": "en", "temperature": TEMPERATURE}
    answer = client.audio.transcriptions.create(**common)  # json by default
    assert isinstance(answer, openai.types.audio.Transcription) and answer.text == reference["text"].strip()
    text = client.audio.transcriptions.create(**common, response_format="text")
    assert text == reference["text"].strip() + "\n"


def test_default_temperature_is_whisper_fallback(server_script: Path) -> None:
    """OpenAI: "If set to 0, the model will use log probability to automatically increase the temperature"."""
    from qwen_whisper_server.schema import parse_request

    assert parse_request({}, ["segment"]).transcribe_options()["temperature"] == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert parse_request({"temperature": "0"}, []).transcribe_options()["temperature"] == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert parse_request({"temperature": "0.3"}, []).transcribe_options()["temperature"] == 0.3


def test_language_field_takes_host_tags(server_script: Path) -> None:
    """The ``language`` field goes through the package's one tag mapping (as Wyoming's, OVOS's and Realtime's)."""
    from qwen_whisper_server.schema import RequestError, parse_request

    for value, code in (("en", "en"), ("en-US", "en"), ("zh_TW", "zh"), ("English", "en"), ("auto", None)):
        assert parse_request({"language": value}, []).language == code
    with pytest.raises(RequestError) as caught:
        parse_request({"language": "xx"}, [])
    assert (caught.value.status, caught.value.param) == (400, "language")
    assert "unknown language 'xx'" in caught.value.message and "en, zh" in caught.value.message


def test_srt_and_vtt(server: Server, clip: tuple[str, bytes, str], reference: dict[str, Any]) -> None:
    client = server.client()
    common: dict[str, Any] = {"model": "whisper-1", "file": clip, "language": "en", "temperature": TEMPERATURE}
    body = client.audio.transcriptions.create(**common, response_format="srt")
    cues = list(srt.parse(body))
    assert [c.content for c in cues] == [s["text"].strip() for s in reference["segments"]]
    for cue, segment in zip(cues, reference["segments"], strict=True):
        assert cue.start.total_seconds() == pytest.approx(segment["start"], abs=0.001)
        assert cue.end.total_seconds() == pytest.approx(segment["end"], abs=0.001)
    vtt = client.audio.transcriptions.create(**common, response_format="vtt")
    expected = io.StringIO()
    WriteVTT(".").write_result(reference, expected)
    assert vtt.startswith("WEBVTT\n\n") and vtt == expected.getvalue()


def test_verbose_json_in_openai_schema(server: Server, jfk_path: Path) -> None:
    raw = server.client().audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=jfk_path, language="en", temperature=TEMPERATURE, response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )  # fmt: skip
    body = json.loads(raw.text)
    assert body["task"] == "transcribe" and body["language"] == "english"
    assert body["duration"] == pytest.approx(11.0, abs=0.01)
    assert body["segments"] and all(set(s) == SEGMENT_KEYS for s in body["segments"])
    assert [s["id"] for s in body["segments"]] == list(range(len(body["segments"])))
    assert body["text"] == "".join(s["text"] for s in body["segments"]).strip()
    assert body["words"] and all(set(w) == {"word", "start", "end"} for w in body["words"])
    assert all(0 <= w["start"] <= w["end"] <= 11.0 for w in body["words"])
    assert all(w["word"] == w["word"].strip() and w["word"] in body["text"] for w in body["words"])

    parsed = raw.parse()  # the client's own model of the answer
    assert isinstance(parsed, openai.types.audio.TranscriptionVerbose)
    assert parsed.duration == body["duration"] and parsed.segments and parsed.words


def test_request_fields(server: Server, clip: tuple[str, bytes, str], jfk_path: Path) -> None:
    client = server.client()
    answer = client.audio.transcriptions.create(
        model="anything", file=clip, prompt="Kennedy, inaugural address", temperature=TEMPERATURE,
        response_format="verbose_json",
    )  # fmt: skip
    assert answer.language in LANGUAGES.values()  # detected, reported by name
    assert answer.segments and answer.words is None  # words only when asked for
    assert answer.duration == pytest.approx(5.0)
    for bad in ({"language": "xx"}, {"temperature": 2.0}, {"response_format": "docx"}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.audio.transcriptions.create(model="whisper-1", file=jfk_path, **bad)
        assert _error_of(caught.value)["param"] == next(iter(bad))


def test_concurrent_requests(server: Server, jfk_path: Path) -> None:
    """Four at once with ``--max-queue 1``: one runs, one waits, those that arrive meanwhile get 503 (at least two
    succeed and at least one is refused, however the arrivals interleave)."""
    long_clip = ("long.wav", _wav_bytes(np.tile(load_audio(jfk_path), 3)), "audio/wav")  # 33 s, 1 MB
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict[str, str], str]] = []

    def one() -> None:
        client = server.client()
        barrier.wait()
        try:
            text = client.audio.transcriptions.create(model="whisper-1", file=long_clip, language="en",
                                                      temperature=TEMPERATURE)  # fmt: skip
            answers.append((200, {}, text.text))
        except openai.APIStatusError as e:
            answers.append((e.status_code, dict(e.response.headers), _error_of(e)["type"]))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    statuses = sorted(status for status, _, _ in answers)
    assert len(statuses) == 4 and set(statuses) <= {200, 503}, answers
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1, answers  # a queued request waited its turn
    assert len({text for status, _, text in answers if status == 200}) == 1  # one model, one answer
    for status, headers, kind in answers:
        if status == 503:
            assert int(headers["retry-after"]) >= 1 and kind == "server_error"


def test_bad_uploads(server: Server, tmp_path: Path, clip: tuple[str, bytes, str]) -> None:
    client = server.client()
    notes = tmp_path / "notes.wav"
    notes.write_text("this is not audio, only text that claims to be a wav file\n" * 20)
    for upload in (("empty.wav", b"", "audio/wav"), notes):
        with pytest.raises(openai.BadRequestError) as caught:
            client.audio.transcriptions.create(model="whisper-1", file=upload)
        assert caught.value.status_code == 400
        error = _error_of(caught.value)
        assert error["type"] == "invalid_request_error" and error["param"] == "file"
    oversized = np.random.default_rng(0).bytes(3 * 1024 * 1024)
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("big.wav", oversized, "audio/wav"))
    assert caught.value.status_code == 413
    assert "Maximum content size limit" in _error_of(caught.value)["message"]
    # without a Content-Length (chunked), the limit is enforced while the body streams in
    status, body = _post_chunked(server, "/v1/audio/transcriptions", [oversized[i : i + 65536] for i in
                                                                      range(0, len(oversized), 65536)])  # fmt: skip
    assert status == 413 and body["error"]["code"] == "file_too_large"
    # the server is still fine
    assert client.audio.transcriptions.create(model="whisper-1", file=clip, temperature=TEMPERATURE).text


def test_api_key(server: Server, jfk_path: Path) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        server.client(api_key="sk-wrong").audio.transcriptions.create(model="whisper-1", file=jfk_path)
    assert _error_of(caught.value)["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        server.client(api_key="sk-wrong").models.list()
    status, body = server.get("/v1/models")  # no Authorization header at all
    assert status == 401 and set(body["error"]) == ERROR_KEYS
    assert server.get("/health")[0] == 200  # health needs no key


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # openai marks audio.translations deprecated
def test_translation_is_refused(server: Server, jfk_path: Path) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        server.client().audio.translations.create(model="whisper-1", file=jfk_path)
    assert "not supported" in _error_of(caught.value)["message"]


def test_one_model_in_memory(server: Server, clip: tuple[str, bytes, str]) -> None:
    """After ten requests of every response format, the process still holds the one model it loaded at startup
    (the test makes its own requests, so it holds alone and in any order)."""
    client = server.client()
    for response_format in RESPONSE_FORMATS * 2:
        client.audio.transcriptions.create(
            model="whisper-1", file=clip, language="en", temperature=TEMPERATURE, response_format=response_format
        )
    status, health = server.get("/health")
    assert status == 200 and health["status"] == "ok", health
    assert health["transcriptions"] >= 10 and health["running"] == health["waiting"] == 0, health
    assert server.log_text().count("loaded model base") == 1


# ------------------------------------------------------------------------------------------------- loading
@pytest.fixture
def gated(
    model_env: dict[str, str], converted: Callable[..., Path], asr_ckpt: Path, tmp_path: Path
) -> tuple[dict[str, str], Path, Path]:
    """The environment in which ``--model gated`` loads the tiny model once the gate file is written, the gate,
    and the model folder."""
    folder = converted(asr_ckpt)
    gate = tmp_path / "gate"
    return {**model_env, **plugin_env(tmp_path / "plugin", folder, gate)}, gate, folder


def _gated_server(script: Path, env: dict[str, str], log: Path) -> Any:
    port = free_port()
    command = [str(script), "--model", "gated", "--aligner", "none", "--port", str(port), "--api-key", API_KEY,
               "--threads", str(THREADS)]  # fmt: skip
    # ready as soon as the port answers: the model is still waiting for its gate
    return port, server_process(command, env, log, lambda: _get(port, "/health")[0] == 503)


# the openai client opens its websockets connection without a context manager; websockets 17 warns about it
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")
def test_the_port_answers_503_while_the_model_loads(
    server_script: Path, gated: tuple[dict[str, str], Path, Path], under_model_env: Any, clip: tuple[str, bytes, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    env, gate, folder = gated
    port, running = _gated_server(server_script, env, tmp_path / "server.log")
    with running as process:
        server = Server(process, port, tmp_path / "server.log")
        assert server.get("/health") == (503, {"status": "loading", "model": "gated"})
        client = server.client()
        with pytest.raises(openai.InternalServerError) as caught:
            client.audio.transcriptions.create(model="whisper-1", file=clip, language="en")
        assert caught.value.status_code == 503 and caught.value.response.headers["retry-after"] == "5"
        error = _error_of(caught.value)
        assert (error["type"], error["code"]) == ("server_error", "model_loading") and "loading" in error["message"]
        with pytest.raises(openai.InternalServerError):
            client.models.list()
        with pytest.raises(openai.AuthenticationError):  # the key is checked first
            server.client(api_key="sk-wrong").models.list()
        with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
            event = json.loads(connection._connection.recv(timeout=60, decode=False))
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                connection._connection.recv(timeout=60)
        assert event["type"] == "error" and event["error"]["code"] == "model_loading"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013  # try again later
        assert "; ready" not in server.log_text()

        gate.write_text("go")
        deadline = time.monotonic() + 120
        while (health := server.get("/health"))[0] != 200:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.2)
        assert health[1]["status"] == "ok" and health[1]["model"] == "gated"
        text = client.audio.transcriptions.create(model="whisper-1", file=clip, language="en", temperature=TEMPERATURE)
        log = server.log_text()
    model = under_model_env(qwen_whisper_compat.load_model, str(folder), aligner=False, threads=THREADS)
    try:
        expected = model.transcribe(clip[1], language="en", temperature=TEMPERATURE)["text"].strip()
    finally:
        model.close()
    assert text.text == expected and expected
    listening, loaded, ready = log.index("listening at"), log.index("loaded model gated"), log.index("; ready")
    assert listening < loaded < ready, log


def test_a_model_that_fails_to_load_is_logged_and_the_server_exits_1(
    server_script: Path, gated: tuple[dict[str, str], Path, Path], tmp_path: Path
) -> None:
    env, gate, _ = gated
    _, running = _gated_server(server_script, env, tmp_path / "server.log")
    with running as process:
        gate.write_text("fail")
        assert process.wait(timeout=60) == 1
    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    assert "cannot load model 'gated'" in log and "the test's gate says this load fails" in log, log
    assert "Traceback" not in log and "; ready" not in log


def _post_chunked(server: Server, path: str, chunks: list[bytes]) -> tuple[int, dict[str, Any]]:
    """POST a multipart upload with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    import http.client

    boundary = "qwc-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(
            "POST", path, body=iter([head, *chunks, f"\r\n--{boundary}--\r\n".encode()]), encode_chunked=True,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _wav_bytes(samples: np.ndarray) -> bytes:
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()
