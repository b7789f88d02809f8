"""The host contracts of ``qwen-whisper-server`` (adapters/openai-server), driven over loopback the way each
host's own code sends its requests:

- whisper-asr-webservice's ``/asr`` and ``/detect-language`` as Bazarr sends them (morpheus65535/bazarr,
  ``custom_libs/subliminal_patch/providers/whisperai.py``: ``requests``, raw s16le with ``encode=false``,
  ``files={'audio_file': pcm}``, ``timeout=(5, 3600)``; its "Test connection" button: ``GET /status``, see
  ``bazarr/app/ui.py``) and as Speakr sends them (murtaza-nasir/speakr,
  ``src/services/transcription/connectors/asr_endpoint.py``: ``httpx``, ``encode=true``, ``output=json``);
- whisper.cpp's ``/inference`` as its README's curl lines and Amica (semperai/amica,
  ``src/features/whispercpp/whispercpp.ts``) send it, ``/load``, and the ``ovos-stt-plugin-whispercppserver``
  package from PyPI, a real client;
- OpenAI's ``stream=true`` through the ``openai`` client.

Subtitle bodies are compared byte for byte with what ``qwen-whisper -f FMT`` writes for the same samples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import openai
import pytest
import requests
import srt

from compat_tests.test_openai_server import API_KEY, THREADS, Server, _wav_bytes, running_server, server_script  # noqa: F401
from qwen_whisper_compat import load_audio

#: 4 s of jfk.flac: short, for the tiny model's speed.
SECONDS = 4


@pytest.fixture(scope="module")
def samples(shared_audio: Path) -> np.ndarray:
    """The clip as the server receives it either way: int16 PCM, as raw bytes or in a wav file."""
    pcm = (np.clip(load_audio(shared_audio / "jfk.flac")[: SECONDS * 16000], -1, 1) * 32767).astype("<i2")
    return pcm


@pytest.fixture(scope="module")
def wav_path(tmp_path_factory: pytest.TempPathFactory, samples: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    path.write_bytes(_wav_bytes(samples.astype(np.float32) / 32767))
    assert np.array_equal(np.frombuffer(path.read_bytes()[44:], "<i2"), samples)
    return path


@pytest.fixture(scope="module")
def cli_outputs(wav_path: Path, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``qwen-whisper clip.wav --model base --language en -f all``: the bodies the server must send."""
    out = tmp_path_factory.mktemp("cli")
    command = [sys.executable, "-m", "qwen_whisper_compat", str(wav_path), "--model", "base", "--language", "en",
               "--output_format", "all", "--output_dir", str(out), "--threads", str(THREADS), "--verbose", "False"]  # fmt: skip
    done = subprocess.run(command, check=False, env={**os.environ, **model_env}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def server(server_script: Path, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # noqa: F811
    """An API key, but loopback is a keyless network (as a Docker network would be for Bazarr); uploads up to
    2 MiB; one request may wait behind the running one."""
    args = ["--api-key", API_KEY, "--keyless-networks", "127.0.0.0/8", "--max-upload-mb", "2", "--max-queue", "1",
            "--threads", str(THREADS), "--inference-path", "/custom/inference"]  # fmt: skip
    with running_server(server_script, model_env, tmp_path_factory.mktemp("hosts"), args) as server:
        yield server


def _url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


# ------------------------------------------------------------------------------ whisper-asr-webservice
def test_bazarr_detects_then_transcribes_raw_pcm(server: Server, samples: np.ndarray, cli_outputs: Path) -> None:
    """Bazarr's two calls (whisperai.py), raw PCM with ``encode=false``, no key (a keyless network)."""
    session = requests.Session()
    session.headers.update({"User-Agent": "Subliminal/2.1.0"})
    pcm = samples.tobytes()
    r = session.post(_url(server, "/detect-language"), params={"encode": "false", "video_file": {None}},
                     files={"audio_file": pcm}, timeout=(5, 3600))  # fmt: skip
    assert r.status_code == 200, r.text
    found = r.json()
    assert set(found) == {"detected_language", "language_code", "confidence"}
    assert found["detected_language"] == {"en": "english", "zh": "chinese"}.get(found["language_code"],
                                                                               found["detected_language"])  # fmt: skip
    assert 0 < found["confidence"] <= 1
    r = session.post(_url(server, "/asr"), params={"task": "transcribe", "language": "en", "output": "srt",
                     "encode": "false", "video_file": {"/media/tv/Show S01E01.mkv"}}, files={"audio_file": pcm},
                     timeout=(5, 3600))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.content == (cli_outputs / "clip.srt").read_bytes()  # the bytes qwen-whisper -f srt writes
    assert list(srt.parse(r.text))
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="audio_file.srt"'  # requests names it so
    assert r.headers["asr-engine"] == "qwen_whisper_compat"


def test_bazarr_test_connection_reads_a_version(server: Server) -> None:
    """bazarr/app/ui.py: ``GET http://host:port/status``, 5 s, no redirects; ``result.json()['version']``."""
    r = requests.get(_url(server, "/status"), allow_redirects=False, timeout=5)
    assert r.status_code == 200 and isinstance(r.json()["version"], str) and r.json()["version"]


@pytest.mark.parametrize("output", ["txt", "vtt", "tsv", "json"])
def test_speakr_and_every_output_match_the_cli(server: Server, wav_path: Path, cli_outputs: Path, output: str) -> None:
    """Speakr's request (asr_endpoint.py: httpx, ``encode=true``, booleans as true/false, the file with its
    name and type); the body is the CLI's file, sent as text/plain with the upload's name."""
    params: dict[str, Any] = {"encode": True, "task": "transcribe", "output": output, "diarize": False,
                              "enable_diarization": False, "language": "en", "model": "whisper-1"}  # fmt: skip
    files = {"audio_file": ("clip.wav", wav_path.read_bytes(), "audio/wav")}
    timeout = httpx.Timeout(None, connect=60.0, read=1800.0, write=1800.0, pool=None)
    with httpx.Client() as client:
        response = client.post(_url(server, "/asr"), params=params, files=files, timeout=timeout)
    response.raise_for_status()
    assert response.content == (cli_outputs / f"clip.{output}").read_bytes()
    assert response.headers["content-disposition"] == f'attachment; filename="clip.wav.{output}"'
    if output == "json":  # what Speakr reads
        data = response.json()
        assert isinstance(data["text"], str) and data["language"] == "en"
        assert all({"start", "end", "text"} <= set(s) for s in data["segments"]) and data["segments"]


def test_asr_options_are_used(server: Server, wav_path: Path) -> None:
    """``word_timestamps`` puts words in the json; ``hotwords`` and ``initial_prompt`` are accepted; the
    health checks Speakr makes pass."""
    files = {"audio_file": ("clip.wav", wav_path.read_bytes(), "audio/wav")}
    r = httpx.post(_url(server, "/asr"), params={"output": "json", "word_timestamps": "true", "language": "en",
                   "hotwords": "Kennedy, Americans", "initial_prompt": "A speech."}, files=files, timeout=600)  # fmt: skip
    assert r.status_code == 200, r.text
    segments = r.json()["segments"]
    assert segments and all(s["words"] for s in segments)
    assert all(w["start"] <= w["end"] for s in segments for w in s["words"])
    assert httpx.get(_url(server, "/health"), timeout=10).status_code < 500
    # vad_filter: only the speech is transcribed, on the original timeline (3 s of silence come first)
    quiet = _wav_bytes(np.concatenate([np.zeros(3 * 16000, np.float32), load_audio(wav_path)]))
    r = httpx.post(_url(server, "/asr"), params={"output": "json", "language": "en", "vad_filter": "true"},
                   files={"audio_file": ("quiet.wav", quiet, "audio/wav")}, timeout=600)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["segments"] and r.json()["segments"][0]["start"] >= 2.5


@pytest.mark.parametrize(
    ("params", "files", "status", "says"),
    [
        ({"encode": "false"}, {"audio_file": b"\x01\x02\x03"}, 400, "even number of bytes"),
        ({}, {"audio_file": b"this is text, not audio" * 20}, 400, "could not be decoded"),
        ({}, {"audio_file": ("empty.wav", b"", "audio/wav")}, 400, "empty"),
        ({}, {"file": ("clip.wav", b"RIFF", "audio/wav")}, 422, "audio_file"),
        ({"output": "docx"}, {"audio_file": b"\0\0"}, 422, "output"),
        ({"language": "xx"}, {"audio_file": b"\0\0"}, 422, "language"),
        ({"encode": "maybe"}, {"audio_file": b"\0\0"}, 422, "encode"),
        ({"task": "translate", "encode": "false"}, {"audio_file": b"\0\0"}, 400, "translate"),
        ({"diarize": "true", "min_speakers": "two"}, {"audio_file": b"\0\0"}, 422, "min_speakers"),
    ],
)
def test_asr_bad_input(server: Server, params: dict[str, str], files: dict[str, Any], status: int, says: str) -> None:
    r = requests.post(_url(server, "/asr"), params=params, files=files, timeout=60)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert says in json.dumps(detail)
    if status == 422:  # FastAPI's shape
        assert all({"type", "loc", "msg", "input"} <= set(e) for e in detail)


def test_oversized_upload_and_the_next_request(server: Server, wav_path: Path) -> None:
    """413 with a JSON body for each contract, and the server still answers the next request."""
    big = b"\0" * (3 * 1024 * 1024)
    r = requests.post(_url(server, "/asr"), params={"encode": "false"}, files={"audio_file": big}, timeout=60)
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = requests.post(_url(server, "/custom/inference"), files={"file": big}, timeout=60)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = requests.post(_url(server, "/detect-language"), files={"audio_file": wav_path.read_bytes()}, timeout=600)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------ whisper.cpp
def test_whispercpp_readme_request_and_formats(server: Server, wav_path: Path, cli_outputs: Path) -> None:
    """The README's curl line (``file``, ``temperature``, ``temperature_inc``, ``response_format``) at the
    ``--inference-path``; each format with whisper.cpp's content type; subtitles are the CLI's bytes."""
    url = _url(server, "/custom/inference")
    expected = {"json": "application/json", "text": "text/html; charset=utf-8", "srt": "application/x-subrip",
                "vtt": "text/vtt"}  # fmt: skip
    bodies = {}
    for fmt, content_type in expected.items():
        with wav_path.open("rb") as f:
            r = requests.post(url, files={"file": f}, data={"temperature": "0.0", "temperature_inc": "0.2",
                              "response_format": fmt, "language": "en"}, timeout=600)  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == content_type
        assert r.headers["access-control-allow-origin"] == "*"
        bodies[fmt] = r.content
    cli = json.loads((cli_outputs / "clip.json").read_text())
    assert bodies["srt"] == (cli_outputs / "clip.srt").read_bytes()
    assert bodies["vtt"] == (cli_outputs / "clip.vtt").read_bytes()
    lines = "".join(s["text"] + "\n" for s in cli["segments"])
    assert json.loads(bodies["json"]) == {"text": lines} and bodies["text"].decode() == lines


def test_whispercpp_verbose_json_and_language_detection(server: Server, wav_path: Path) -> None:
    url = _url(server, "/custom/inference")
    r = requests.post(url, files={"file": wav_path.read_bytes()}, data={"response_format": "verbose_json",
                      "language": "auto"}, timeout=600)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body)[:5] == ["task", "language", "duration", "text", "segments"]
    assert body["duration"] == pytest.approx(SECONDS)
    assert body["detected_language"] == body["language"] and 0 < body["detected_language_probability"] <= 1
    assert body["language_probabilities"] and all(len(code) <= 3 for code in body["language_probabilities"])
    segment = body["segments"][0]
    assert list(segment) == ["id", "text", "start", "end", "tokens", "words", "temperature", "avg_logprob",
                             "no_speech_prob"]  # fmt: skip
    assert segment["words"] and set(segment["words"][0]) == {"word", "start", "end", "t_dtw", "probability"}
    r = requests.post(url, files={"file": wav_path.read_bytes()}, data={"detect_language": "true"}, timeout=600)
    assert r.status_code == 200 and r.json() == {"text": ""}


def test_amica_request(server: Server, wav_path: Path) -> None:
    """Amica's fetch: FormData ``file`` (``input.wav``), ``Accept: text/html``; it reads ``.text``."""
    r = requests.post(_url(server, "/custom/inference"), headers={"Accept": "text/html"},
                      files={"file": ("input.wav", wav_path.read_bytes(), "audio/wav")}, timeout=600)  # fmt: skip
    assert r.status_code == 200 and r.json()["text"].strip()


@pytest.mark.parametrize(
    ("data", "files", "says"),
    [
        ({}, {"audio": b"RIFF"}, "no 'file' field in the request"),
        ({}, {"file": b"not audio at all" * 30}, "could not be decoded"),
        ({}, {"file": ("a.wav", b"", "audio/wav")}, "empty"),
        ({"response_format": "docx"}, {"file": b"RIFF"}, "response_format"),
        ({"beam_size": "five"}, {"file": b"RIFF"}, "beam_size"),
        ({"translate": "true"}, {"file": b"RIFF"}, "translate"),
    ],
)
def test_whispercpp_bad_input(server: Server, data: dict[str, str], files: dict[str, Any], says: str) -> None:
    r = requests.post(_url(server, "/custom/inference"), data=data, files=files, timeout=60)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json" and says in r.json()["error"]


def test_ovos_whispercpp_plugin(server: Server, samples: np.ndarray) -> None:
    """``ovos-stt-plugin-whispercppserver`` from PyPI: it posts a wav in a wav to its ``server`` URL."""
    from ovos_plugin_manager.utils.audio import AudioData
    from ovos_stt_plugin_whispercppserver import OVOSWCPPSSTT

    stt = OVOSWCPPSSTT()
    stt.server = _url(server, "/custom/inference")
    text = stt.execute(AudioData(samples.tobytes(), 16000, 2), language="en")
    assert isinstance(text, str) and text.strip()


# ------------------------------------------------------------------------------ access, /load
def test_v1_and_load_still_need_the_key(server: Server) -> None:
    assert requests.get(_url(server, "/v1/models"), timeout=10).status_code == 401
    r = requests.post(_url(server, "/load"), files={"model": (None, "base")}, timeout=10)
    assert r.status_code == 401 and "API key" in r.json()["error"]


def test_load_swaps_the_model(server: Server, wav_path: Path) -> None:
    key = {"Authorization": f"Bearer {API_KEY}"}
    r = requests.post(_url(server, "/load"), files={"model": (None, "no-such-model")}, headers=key, timeout=60)
    assert r.status_code == 400 and "no-such-model" in r.json()["error"]
    r = requests.post(_url(server, "/load"), files={"model": (None, "tiny")}, headers=key, timeout=600)
    assert r.status_code == 200 and r.text == "Load was successful!"
    assert r.headers["content-type"].startswith("application/text")
    assert requests.get(_url(server, "/v1/models"), headers=key, timeout=10).json()["data"][0]["id"] == "tiny"
    r = requests.post(_url(server, "/custom/inference"), files={"file": wav_path.read_bytes()}, timeout=600)
    assert r.status_code == 200 and r.json()["text"].strip()


# ------------------------------------------------------------------------------ OpenAI stream=true
def test_openai_stream(server: Server, wav_path: Path) -> None:
    """The ``openai`` client's ``stream=True``: a delta per segment as it is made, then the whole text."""
    client = server.client()
    clip = ("long.wav", _wav_bytes(np.tile(load_audio(wav_path), 4)), "audio/wav")  # 16 s: two segments or more
    plain = client.audio.transcriptions.create(model="whisper-1", file=clip, language="en", temperature=0.2,
                                               response_format="verbose_json")  # fmt: skip
    assert plain.segments is not None and len(plain.segments) >= 2
    events = list(client.audio.transcriptions.create(model="whisper-1", file=clip, language="en",
                                                     temperature=0.2, stream=True))  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds == ["transcript.text.delta"] * len(plain.segments) + ["transcript.text.done"]
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == plain.text
    assert [e.delta.strip() for e in events[:-1]] == [s.text.strip() for s in plain.segments]
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio" * 50, "audio/wav"),
                                           stream=True)  # fmt: skip


def test_busy_server_answers_503_quickly(server: Server, wav_path: Path) -> None:
    """Bazarr gives up on a connection error: a full queue is a quick 503, never an unanswered connection."""
    long = _wav_bytes(np.tile(load_audio(wav_path), 6))  # 24 s
    results: list[int] = []

    def hold() -> None:
        r = requests.post(_url(server, "/asr"), params={"language": "en"}, files={"audio_file": long}, timeout=600)
        results.append(r.status_code)

    holders = [threading.Thread(target=hold) for _ in range(2)]  # one runs, one waits (--max-queue 1)
    for t in holders:
        t.start()
        time.sleep(1.0)
    start = time.monotonic()
    r = requests.post(_url(server, "/asr"), params={"encode": "false"}, files={"audio_file": b"\0\0" * 16000},
                      timeout=(5, 30))  # fmt: skip
    took = time.monotonic() - start
    for t in holders:
        t.join(timeout=600)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["detail"]
    assert took < 5, took
    assert results == [200, 200]


def test_keyless_networks_are_checked_on_the_client_address() -> None:
    """Unit check of the rule the server applies: only listed networks skip the key, only on host contracts."""
    from qwen_whisper_server.gate import Access, parse_networks
    from qwen_whisper_server.schema import RequestError
    from starlette.requests import Request

    access = Access("k", parse_networks(["172.16.0.0/12", "192.168.1.20"]))

    def request(host: str, key: str | None = None) -> Request:
        headers = [(b"authorization", f"Bearer {key}".encode())] if key else []
        return Request({"type": "http", "client": (host, 5000), "headers": headers, "method": "POST", "path": "/"})

    access.check(request("172.17.0.2"), keyless=True)
    access.check(request("::ffff:192.168.1.20"), keyless=True)
    access.check(request("10.0.0.1", "k"), keyless=True)
    for req, keyless in ((request("10.0.0.1"), True), (request("172.17.0.2"), False), (request("192.168.1.21"), True)):
        with pytest.raises(RequestError) as caught:
            access.check(req, keyless=keyless)
        assert caught.value.status == 401
    with pytest.raises(ValueError, match="not an IP network"):
        parse_networks(["docker"])


def test_keyless_networks_need_a_key(server_script: Path) -> None:  # noqa: F811
    done = subprocess.run([str(server_script), "--keyless-networks", "10.0.0.0/8"], check=False, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 2 and "--api-key" in done.stderr


def test_a_replaced_model_is_closed_after_its_last_lease() -> None:
    """``POST /load``'s swap (served.py): the old model stays open while a job or session holds it."""
    from qwen_whisper_server.served import ServedModel

    from qwen_whisper_compat.serving import BackgroundModel

    class Fake:
        def __init__(self, name: str) -> None:
            self.name, self.closed = name, 0

        def close(self) -> None:
            self.closed += 1

    old, new, newer = Fake("old"), Fake("new"), Fake("newer")
    served = ServedModel(BackgroundModel.loaded(cast(Any, old), "old"), "old")
    with served.lease() as held:
        assert held is cast(Any, old)
        served.replace(lambda: cast(Any, new), "new")
        assert served.name == "new" and served.model is cast(Any, new) and old.closed == 0  # still leased
        with pytest.raises(RuntimeError):
            served.replace(lambda: cast(Any, (_ for _ in ()).throw(RuntimeError("no"))), "bad")
        assert served.model is cast(Any, new)  # a failed load keeps the model
    assert old.closed == 1
    served.replace(lambda: cast(Any, newer), "newer")
    assert new.closed == 1 and newer.closed == 0
    served.close()
    assert (old.closed, new.closed, newer.closed) == (1, 1, 1)


# ------------------------------------------------------------------------------ speaker labels
@pytest.fixture(scope="module")
def dialogue_wav() -> bytes:
    """Three turns of two espeak-ng voices (tests/dialogues.py), as a wav upload."""
    from dialogues import FEMALE, LINES, MALE, espeak_dialogue, require_espeak

    require_espeak()
    audio, _ = espeak_dialogue([(MALE, LINES[0]), (FEMALE, LINES[1]), (MALE, LINES[2])])
    return _wav_bytes(audio)


def test_speakr_diarize_reads_speakers(server: Server, dialogue_wav: bytes) -> None:
    """Speakr's request with ``diarize=true`` (its default): ``segments[].speaker``, both voices."""
    params = {"encode": True, "task": "transcribe", "output": "json", "diarize": True, "enable_diarization": True,
              "min_speakers": 2, "max_speakers": 2, "language": "en"}  # fmt: skip
    files = {"audio_file": ("talk.wav", dialogue_wav, "audio/wav")}
    with httpx.Client() as client:
        response = client.post(_url(server, "/asr"), params=params, files=files, timeout=600)
    response.raise_for_status()
    segments = response.json()["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    r = requests.post(_url(server, "/asr"), params={"diarize": "true", "output": "srt", "language": "en"},
                      files={"audio_file": dialogue_wav}, timeout=600)  # fmt: skip
    texts = [cue.content for cue in srt.parse(r.text)]
    assert r.status_code == 200 and texts and all(t.startswith("[SPEAKER_0") for t in texts)


def test_whispercpp_and_openai_diarized(server: Server, dialogue_wav: bytes) -> None:
    r = requests.post(_url(server, "/custom/inference"), files={"file": dialogue_wav},
                      data={"diarize": "true", "response_format": "verbose_json", "language": "en"}, timeout=600)  # fmt: skip
    assert r.status_code == 200, r.text
    assert {s["speaker"] for s in r.json()["segments"]} == {"SPEAKER_00", "SPEAKER_01"}
    answer = server.client().audio.transcriptions.create(model="whisper-1", file=("talk.wav", dialogue_wav),
                                                         language="en", response_format="diarized_json")  # fmt: skip
    segments = answer.model_dump()["segments"]
    assert {s["speaker"] for s in segments} == {"SPEAKER_00", "SPEAKER_01"}
    assert all(s["type"] == "transcript.text.segment" and s["end"] >= s["start"] for s in segments)
