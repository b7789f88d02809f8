"""The Wyoming server (adapters/wyoming, ``qwen-whisper-wyoming``), installed as a user would and driven by the
``wyoming`` package's own client over loopback TCP and over ``stdio://`` (as wyoming-faster-whisper's tests
drive theirs), and by a client that does exactly what Home Assistant's Wyoming STT entity does.

One server runs for the module (its console script, ``--model base`` resolving to the tiny random models,
one transcription at a time and one more waiting). Transcripts are compared with the live engine in-process
(``model.stream``) fed the same audio in the server's blocks, decoded independently of the server's PCM
converter (the chunks' PCM as a WAV file through ``load_audio``). The loading tests start servers whose model
load waits for the test (tests/gated_source.py, a model-source plugin).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gated_source import plugin_env
from qwc_fixtures import free_port, install_distribution, server_process
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info

import qwen_whisper_compat
from qwen_whisper_compat import load_audio
from qwen_whisper_compat.tokenizer import QWEN_LANGUAGES

ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "wyoming"
THREADS = 1
#: The server's feeding block (qwen_whisper_wyoming.handler.BLOCK): the reference is fed the same blocks.
BLOCK = 4000
#: Every wait on the server is bounded by this.
TIMEOUT = 60.0

#: (rate, width, channels) of the two ways audio is sent: the issue's 44.1 kHz stereo, and Home Assistant's
#: 16 kHz 16-bit mono.
STEREO_44K = (44100, 2, 2)
HA_FORMAT = (16000, 2, 1)
SAMPLES_PER_CHUNK = 1024


# ------------------------------------------------------------------------------------------------- fixtures
@dataclass
class Server:
    """A ``qwen-whisper-wyoming`` process listening on a loopback port, with its combined log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def client(self) -> AsyncTcpClient:
        return _client(self.port)


def _client(port: int) -> AsyncTcpClient:
    return AsyncTcpClient("127.0.0.1", port, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)


@pytest.fixture(scope="module")
def script() -> Path:
    install_distribution(ADAPTER)
    path = Path(sys.executable).parent / ("qwen-whisper-wyoming" + (".exe" if os.name == "nt" else ""))
    assert path.is_file(), "installing the adapter must create the qwen-whisper-wyoming console script"
    return path


@contextlib.contextmanager
def running_server(
    script: Path, env: dict[str, str], folder: Path, args: list[str], model: str = "base", loaded: bool = True
) -> Iterator[Server]:
    """``qwen-whisper-wyoming --model base`` on a free loopback port, once it transcribes (``loaded``: an empty
    transcription is answered with a transcript), or else once it answers ``describe``."""
    port = free_port()
    log = folder / "wyoming.log"
    command = [str(script), "--model", model, "--uri", f"tcp://127.0.0.1:{port}", "--threads", str(THREADS), *args]

    def ready() -> bool:
        if loaded:
            empty = [AudioStart(*HA_FORMAT).event(), AudioStop().event()]
            return _types(asyncio.run(_exchange(port, empty))) == ["transcript"]
        return _types(asyncio.run(_exchange(port, [Describe().event()], until="info"))) == ["info"]

    with server_process(command, env, log, ready) as process:
        yield Server(process, port, log)


@pytest.fixture(scope="module")
def server(script: Path, model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    args = ["--max-sessions", "1", "--max-queue", "1"]
    with running_server(script, model_env, tmp_path_factory.mktemp("wyoming"), args) as server:
        yield server


@pytest.fixture(scope="module")
def model(under_model_env: Any) -> Iterator[Any]:
    """The server's model, in-process (no aligner, as the server loads it)."""
    model = under_model_env(qwen_whisper_compat.load_model, "base", threads=THREADS, aligner=False)
    yield model
    model.close()


def _pcm(shared_audio: Path, fmt: tuple[int, int, int]) -> bytes:
    rate, width, channels = fmt
    assert width == 2
    samples = (np.clip(load_audio(shared_audio / "jfk.flac", sr=rate), -1, 1) * 32767).astype("<i2")
    return np.repeat(samples[:, None], channels, axis=1).tobytes()


def _chunks(pcm: bytes, fmt: tuple[int, int, int]) -> list[AudioChunk]:
    rate, width, channels = fmt
    size = SAMPLES_PER_CHUNK * width * channels
    return [AudioChunk(rate, width, channels, pcm[i : i + size]) for i in range(0, len(pcm), size)]


@pytest.fixture(scope="module")
def jfk_stereo(shared_audio: Path) -> list[AudioChunk]:
    """jfk.flac as 1024-sample chunks of 16-bit stereo at 44.1 kHz."""
    return _chunks(_pcm(shared_audio, STEREO_44K), STEREO_44K)


@pytest.fixture(scope="module")
def jfk_ha(shared_audio: Path) -> list[AudioChunk]:
    """jfk.flac as Home Assistant sends it: 16-bit mono at 16 kHz."""
    return _chunks(_pcm(shared_audio, HA_FORMAT), HA_FORMAT)


def _decoded(chunks: list[AudioChunk], folder: Path) -> np.ndarray:
    """The chunks' audio at 16 kHz mono, as a WAV file through ``load_audio``: not the server's code."""
    path = folder / "sent.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(chunks[0].channels)
        w.setsampwidth(chunks[0].width)
        w.setframerate(chunks[0].rate)
        w.writeframes(b"".join(c.audio for c in chunks))
    return load_audio(path)


def _reference(model: Any, chunks: list[AudioChunk], language: str | None, folder: Path) -> tuple[list[str], str, str]:
    """The live engine on what the server hears: the speech finals' texts, the transcript, its language."""
    samples = _decoded(chunks, folder)
    with model.stream(language=language, partials=False) as stream:
        events = [e for i in range(0, samples.size, BLOCK) for e in stream.feed(samples[i : i + BLOCK])]
        events += stream.finish()
        detected = stream.result()["language"]
    finals = ["".join(s["text"] for s in e.segments) for e in events if e.type == "final" and e.speech]
    text = "".join(finals).strip()
    assert text, "the tiny model always says something about jfk.flac"
    return finals, text, detected


@pytest.fixture(scope="module")
def reference_stereo(
    model: Any, jfk_stereo: list[AudioChunk], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], str, str]:
    return _reference(model, jfk_stereo, None, tmp_path_factory.mktemp("reference-stereo"))


@pytest.fixture(scope="module")
def reference_en(
    model: Any, jfk_ha: list[AudioChunk], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[str], str, str]:
    return _reference(model, jfk_ha, "en", tmp_path_factory.mktemp("reference-en"))


# ------------------------------------------------------------------------------------------------- helpers
async def _exchange(port: int, events: list[Event], until: str | None = None) -> list[Event]:
    """Send ``events`` on one connection; every event the server sends back, until it closes the connection
    (or up to the first of type ``until``)."""
    received: list[Event] = []
    async with _client(port) as client:
        for event in events:
            await client.write_event(event)
        while (event := await client.read_event()) is not None:
            received.append(event)
            if event.type == until:
                break
    return received


def _audio(chunks: list[AudioChunk]) -> list[Event]:
    first = chunks[0]
    return [AudioStart(first.rate, first.width, first.channels).event(), *(c.event() for c in chunks),
            AudioStop().event()]  # fmt: skip


def _types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def _wait_idle(server: Server) -> None:
    """Bounded wait until an empty transcription gets the model's slot and is answered: what an earlier test
    left running has ended."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        events = asyncio.run(_exchange(server.port, [AudioStart(*HA_FORMAT).event(), AudioStop().event()]))
        if _types(events) == ["transcript"]:
            return
        assert time.monotonic() < deadline, f"the server never became idle: {events}\n{server.log_text()}"
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------- describe
def test_describe_answers_info_with_the_model_and_its_languages(server: Server, model: Any) -> None:
    events = asyncio.run(_exchange(server.port, [Describe().event()], until="info"))
    assert _types(events) == ["info"]
    info = Info.from_event(events[0])
    assert len(info.asr) == 1, "Home Assistant aborts when info lists no ASR program"
    program = info.asr[0]
    assert program.installed and program.supports_transcript_streaming
    assert program.version == "0.1.0" and program.attribution.url
    assert [m.name for m in program.models] == ["base"]
    assert program.models[0].installed
    assert program.models[0].languages == sorted(model.languages) and "en" in program.models[0].languages


# ------------------------------------------------------------------------------------------------- transcripts
def test_44k_stereo_chunks_give_the_live_engines_transcript(
    server: Server, jfk_stereo: list[AudioChunk], reference_stereo: tuple[list[str], str, str]
) -> None:
    """A client that sends audio only (no ``transcribe``): one ``transcript``, then the server closes."""
    events = asyncio.run(_exchange(server.port, _audio(jfk_stereo)))
    assert _types(events) == ["transcript"], server.log_text()
    transcript = Transcript.from_event(events[0])
    _, text, language = reference_stereo
    assert transcript.text == text
    assert transcript.language == (language or None)


def test_streaming_client_gets_start_a_chunk_per_final_the_transcript_and_stop(
    server: Server, jfk_ha: list[AudioChunk], reference_en: tuple[list[str], str, str]
) -> None:
    _wait_idle(server)
    events = asyncio.run(_exchange(server.port, [Transcribe(language="en").event(), *_audio(jfk_ha)]))
    kinds = _types(events)
    finals, text, _ = reference_en
    assert kinds == ["transcript-start"] + ["transcript-chunk"] * len(finals) + ["transcript", "transcript-stop"]
    assert TranscriptStart.from_event(events[0]).language == "en"
    chunks = [TranscriptChunk.from_event(e).text for e in events[1:-2]]
    assert "".join(chunks).strip() == text, "the chunks add up to the transcript"
    assert [c.strip() for c in chunks] == [f.strip() for f in finals]
    assert Transcript.from_event(events[-2]).text == text
    assert TranscriptStop.is_type(events[-1].type)


def test_home_assistants_client_reads_only_the_transcript(
    server: Server, jfk_ha: list[AudioChunk], reference_en: tuple[list[str], str, str]
) -> None:
    """What ``homeassistant/components/wyoming/stt.py`` does: ``transcribe`` with the pipeline's language,
    16 kHz mono chunks as they come from the satellite, ``audio-stop``, then read events until a
    ``transcript`` and ignore the rest (the streaming events included)."""
    _wait_idle(server)

    async def home_assistant() -> str | None:
        async with AsyncTcpClient("127.0.0.1", server.port) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for chunk in jfk_ha:
                await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=chunk.audio).event())
            await client.write_event(AudioStop().event())
            while True:
                event = await asyncio.wait_for(client.read_event(), TIMEOUT)
                if event is None:
                    return None  # Home Assistant: "Connection lost", an STT error
                if Transcript.is_type(event.type):
                    return Transcript.from_event(event).text

    assert asyncio.run(home_assistant()) == reference_en[1]


@pytest.mark.parametrize("streaming", [False, True], ids=["audio-only", "streaming"])
def test_an_empty_audio_stream_gives_an_empty_transcript(server: Server, streaming: bool) -> None:
    _wait_idle(server)
    request = [Transcribe(language="en").event()] if streaming else []
    start = AudioStart(rate=16000, width=2, channels=1).event()
    for events in ([*request, start, AudioStop().event()], [*request, AudioStop().event()]):
        received = asyncio.run(_exchange(server.port, events))
        transcripts = [Transcript.from_event(e) for e in received if Transcript.is_type(e.type)]
        assert [t.text for t in transcripts] == [""]
        expected = ["transcript-start", "transcript", "transcript-stop"] if streaming else ["transcript"]
        assert _types(received) == expected


def test_audio_with_no_speech_gives_an_empty_transcript(server: Server) -> None:
    _wait_idle(server)
    silence = AudioChunk(rate=22050, width=2, channels=1, audio=bytes(2 * 22050 * 3))  # 3 s of digital silence
    received = asyncio.run(_exchange(server.port, [Transcribe().event(), *_audio([silence])]))
    assert _types(received) == ["transcript-start", "transcript", "transcript-stop"]
    assert Transcript.from_event(received[1]).text == ""


# ------------------------------------------------------------------------------------------------- clients
def test_two_clients_at_once_are_both_answered_in_turn(
    server: Server, jfk_stereo: list[AudioChunk], reference_stereo: tuple[list[str], str, str]
) -> None:
    _wait_idle(server)

    async def both() -> list[list[Event]]:
        return list(await asyncio.gather(*(_exchange(server.port, _audio(jfk_stereo)) for _ in range(2))))

    for events in asyncio.run(both()):
        assert _types(events) == ["transcript"], server.log_text()
        assert Transcript.from_event(events[0]).text == reference_stereo[1]


def test_a_client_beyond_the_queue_gets_a_busy_error_and_the_others_are_answered(
    server: Server, jfk_ha: list[AudioChunk], reference_en: tuple[list[str], str, str]
) -> None:
    """One transcription runs and one waits (--max-sessions 1 --max-queue 1): a third is refused at once."""
    _wait_idle(server)

    async def three() -> tuple[list[Event], list[list[Event]]]:
        clients = [server.client() for _ in range(3)]
        for client in clients:
            await client.connect()
        try:
            for client in clients[:2]:
                await client.write_event(Transcribe(language="en").event())
                await client.write_event(AudioStart(*HA_FORMAT).event())
                assert TranscriptStart.is_type((await client.read_event()).type)
            await clients[2].write_event(AudioStart(*HA_FORMAT).event())
            refused = [await clients[2].read_event()]  # at once, while the other two still hold the model
            await clients[2].write_event(AudioStop().event())
            refused += [e async for e in _rest(clients[2])]
            answered = []
            for client in clients[:2]:
                for chunk in jfk_ha:
                    await client.write_event(chunk.event())
                await client.write_event(AudioStop().event())
                answered.append([e async for e in _rest(client)])
            return refused, answered
        finally:
            for client in clients:
                await client.disconnect()

    refused, answered = asyncio.run(three())
    assert _types(refused) == ["error"]
    error = Error.from_event(refused[0])
    assert error.code == "busy" and "--max-queue" in error.text
    for events in answered:
        assert Transcript.from_event(next(e for e in events if Transcript.is_type(e.type))).text == reference_en[1]


async def _rest(client: AsyncTcpClient) -> Any:
    while (event := await client.read_event()) is not None:
        yield event


def test_a_client_that_vanishes_mid_stream_frees_its_slot(
    server: Server, jfk_stereo: list[AudioChunk], reference_stereo: tuple[list[str], str, str]
) -> None:
    _wait_idle(server)

    async def vanish() -> None:
        client = server.client()
        await client.connect()
        for event in _audio(jfk_stereo)[: len(jfk_stereo) // 2]:
            await client.write_event(event)
        await client.disconnect()

    asyncio.run(vanish())
    # with one slot, the next client is answered (in bounded time) only once the vanished one freed it
    events = asyncio.run(_exchange(server.port, _audio(jfk_stereo)))
    assert _types(events) == ["transcript"], server.log_text()
    assert Transcript.from_event(events[0]).text == reference_stereo[1]


@pytest.mark.parametrize(
    ("language", "message"),
    [("tlh", "unknown language 'tlh'"), ("nb-NO", "does not transcribe the language 'nb-NO' (no, norwegian)")],
    ids=["unknown", "not-the-models"],
)
def test_a_language_the_model_lacks_is_an_error_event(server: Server, model: Any, language: str, message: str) -> None:
    events = asyncio.run(_exchange(server.port, [Transcribe(language=language).event(), AudioStop().event()]))
    assert _types(events) == ["error"]
    error = Error.from_event(events[0])
    assert error.code == "unsupported-option" and message in error.text
    assert ", ".join(sorted(model.languages)) in error.text, "the error lists the languages that work"


def test_region_tagged_languages_resolve_to_the_models_code(
    server: Server, jfk_ha: list[AudioChunk], reference_en: tuple[list[str], str, str]
) -> None:
    _wait_idle(server)
    events = asyncio.run(_exchange(server.port, [Transcribe(language="en-US").event(), *_audio(jfk_ha)]))
    assert Transcript.from_event(events[-2]).text == reference_en[1]
    assert TranscriptStart.from_event(events[0]).language == "en"


def test_an_unreadable_audio_format_is_an_error_event(server: Server) -> None:
    bad = AudioChunk(rate=16000, width=5, channels=1, audio=bytes(50))
    events = asyncio.run(_exchange(server.port, [AudioStart(16000, 5, 1).event(), bad.event(), AudioStop().event()]))
    assert _types(events) == ["error"]
    assert Error.from_event(events[0]).code == "bad-audio" and "width" in Error.from_event(events[0]).text


# ------------------------------------------------------------------------------------------------- stdio
def test_over_stdio_as_wyoming_faster_whispers_tests_run_it(
    script: Path, model_env: dict[str, str], jfk_stereo: list[AudioChunk], reference_stereo: tuple[list[str], str, str]
) -> None:
    async def session() -> tuple[Info, Transcript, int, bytes]:
        process = await asyncio.create_subprocess_exec(
            str(script), "--uri", "stdio://", "--model", "base", "--threads", str(THREADS),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **model_env},
        )  # fmt: skip
        assert process.stdin is not None and process.stdout is not None
        try:
            await async_write_event(Describe().event(), process.stdin)
            info = Info.from_event(await _next(process.stdout, "info"))
            for event in _audio(jfk_stereo):
                await async_write_event(event, process.stdin)
            transcript = Transcript.from_event(await _next(process.stdout, "transcript"))
            process.stdin.close()
            _, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        return info, transcript, process.returncode, stderr

    info, transcript, returncode, stderr = asyncio.run(session())
    assert len(info.asr) == 1 and info.asr[0].models[0].name == "base"
    assert transcript.text == reference_stereo[1]
    assert returncode == 0, stderr.decode(errors="replace")
    assert b"ready" in stderr, "the log goes to stderr: stdout is the protocol"


async def _next(stdout: asyncio.StreamReader, kind: str) -> Event:
    while True:
        event = await asyncio.wait_for(async_read_event(stdout), TIMEOUT)
        assert event is not None, f"the server closed stdout before a {kind} event"
        if event.type == kind:
            return event


# ------------------------------------------------------------------------------------------------- command line
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--uri", "http://127.0.0.1:10300"], "--uri must be tcp://HOST:PORT, unix://PATH or stdio://"),
        (["--uri", "tcp://127.0.0.1"], "needs a host and a port"),
        (["--uri", "stdio://", "--zeroconf"], "--zeroconf needs a tcp:// --uri"),
        (["--max-sessions", "0"], "--max-sessions must be 1 or more"),
        (["--language", "tlh"], "--language: unknown language 'tlh'; the languages are en, zh, de"),
    ],
    ids=["scheme", "port", "zeroconf-stdio", "sessions", "language"],
)
def test_bad_command_lines_exit_2_with_the_reason(
    script: Path, model_env: dict[str, str], args: list[str], message: str
) -> None:
    done = subprocess.run([str(script), "--model", "base", *args], env={**os.environ, **model_env},
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_model_that_is_not_there_exits_1_saying_what_to_do(script: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(script), "--model", "base", "--data-dir", str(tmp_path), "--local-files-only"],
        env={**os.environ, "QWEN_WHISPER_HUB_MIRROR": "", "HF_HUB_OFFLINE": "1"},
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "cannot load model 'base'" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir()), "nothing half-written in the data folder"


# ------------------------------------------------------------------------------------------------- loading
@pytest.fixture
def gated(
    model_env: dict[str, str], converted: Callable[..., Path], asr_ckpt: Path, tmp_path: Path
) -> tuple[dict[str, str], Path]:
    """The environment in which ``--model gated`` loads the tiny model once the gate file is written; the gate."""
    gate = tmp_path / "gate"
    return {**model_env, **plugin_env(tmp_path / "plugin", converted(asr_ckpt), gate)}, gate


def test_the_server_listens_while_the_model_loads(
    script: Path, gated: tuple[dict[str, str], Path], jfk_ha: list[AudioChunk], tmp_path: Path
) -> None:
    """Bound before the load: ``describe`` is answered with what is known, a transcription gets an ``error``
    event (code ``loading``) and the connection closes at its ``audio-stop``; once loaded, it transcribes."""
    env, gate = gated
    with running_server(script, env, tmp_path, [], model="gated", loaded=False) as server:
        info = Info.from_event(asyncio.run(_exchange(server.port, [Describe().event()], until="info"))[0])
        [model] = info.asr[0].models
        assert model.name == "gated" and model.installed and "(loading)" in model.description
        assert model.languages == sorted(QWEN_LANGUAGES), "the released models' languages, until it is loaded"
        refused = asyncio.run(_exchange(server.port, [Transcribe(language="en").event(), *_audio(jfk_ha[:20])]))
        assert _types(refused) == ["error"], "one error; the rest of the request is read and dropped"
        error = Error.from_event(refused[0])
        assert error.code == "loading" and "'gated' is still loading" in error.text
        assert "; ready" not in server.log_text()

        gate.write_text("go")
        deadline = time.monotonic() + TIMEOUT
        while _types(events := asyncio.run(_exchange(server.port, _audio(jfk_ha)))) != ["transcript"]:
            assert [Error.from_event(e).code for e in events] == ["loading"], events
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.2)
        assert Transcript.from_event(events[0]).text
        info = Info.from_event(asyncio.run(_exchange(server.port, [Describe().event()], until="info"))[0])
        assert "(loading)" not in info.asr[0].models[0].description
        log = server.log_text()
    assert log.index("listening at") < log.index("; ready"), log


def test_a_model_that_fails_to_load_after_the_bind_exits_1(
    script: Path, gated: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, gate = gated
    with running_server(script, env, tmp_path, [], model="gated", loaded=False) as server:
        gate.write_text("fail")
        assert server.process.wait(timeout=TIMEOUT) == 1
        log = server.log_text()
    assert "cannot load model 'gated'" in log and "the test's gate says this load fails" in log, log
    assert "Traceback" not in log and "; ready" not in log


# ------------------------------------------------------------------------------------------------- zeroconf
@pytest.mark.skipif(os.name != "posix", reason="the server's clean exit on terminate() is a POSIX SIGTERM")
def test_zeroconf_announces_the_server_and_withdraws_it_on_exit(
    script: Path, model_env: dict[str, str], tmp_path: Path
) -> None:
    """Browsed as Home Assistant's zeroconf discovery does (``_wyoming._tcp.local.``): the service appears
    with the server's port, and the browser hears it removed (mDNS goodbye) when the server stops."""
    from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

    name = f"qwc-test-{os.getpid()}"
    full = f"{name}._wyoming._tcp.local."
    seen = {ServiceStateChange.Added: threading.Event(), ServiceStateChange.Removed: threading.Event()}

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if name == full and state_change in seen:
            seen[state_change].set()

    browser_zeroconf = Zeroconf()
    try:
        ServiceBrowser(browser_zeroconf, "_wyoming._tcp.local.", handlers=[on_change])
        with running_server(script, model_env, tmp_path, ["--zeroconf", name]) as server:
            assert seen[ServiceStateChange.Added].wait(TIMEOUT), server.log_text()
            info = browser_zeroconf.get_service_info("_wyoming._tcp.local.", full, timeout=10_000)
            assert info is not None and info.port == server.port, server.log_text()
            assert info.parsed_addresses() == ["127.0.0.1"]
            assert "a loopback address" in server.log_text(), "announcing 127.0.0.1 is worth a warning"
        assert server.process.returncode == 0, server.log_text()  # SIGTERM: a clean stop
        assert seen[ServiceStateChange.Removed].wait(10), "the announcement is withdrawn when the server stops"
    finally:
        browser_zeroconf.close()


def test_zeroconf_without_its_package_says_what_to_install(script: Path) -> None:
    hide = "import sys; sys.modules['zeroconf'] = None; from qwen_whisper_wyoming.cli import run; sys.exit(run())"
    done = subprocess.run([sys.executable, "-c", hide, "--zeroconf"], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'qwen-whisper-wyoming[zeroconf]'" in done.stderr
