"""The live audio sources without a model: the bounded queue of ``BlockSource`` and its two policies (a
reader waits, a microphone drops with a counted warning), and the microphone opened at its own rate."""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from typing import Any, ClassVar

import numpy as np
import pytest

from qwen_whisper_compat import live_sources
from qwen_whisper_compat.errors import AudioLoadError
from qwen_whisper_compat.live_sources import BlockSource

SR = 16000
BOUND = 0.1  # seconds: 1600 samples wait at most


def wait_until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


def test_a_full_source_makes_a_reader_wait_and_loses_nothing() -> None:
    put: list[int] = []

    def produce(source: BlockSource) -> None:
        for i in range(10):
            source.put(np.full(1000, i, np.float32))
            put.append(i)

    source = BlockSource(produce, max_seconds=BOUND, policy="block")
    assert wait_until(lambda: len(put) == 1)
    time.sleep(0.3)  # the second block does not fit beside the first: the producer waits for the consumer
    assert put == [0]
    got = np.concatenate(list(source))  # the consumer takes what waits, and the producer goes on
    assert put == list(range(10))
    assert np.array_equal(got, np.repeat(np.arange(10, dtype=np.float32), 1000))
    assert source.dropped_samples == 0


def test_closing_releases_a_waiting_reader() -> None:
    put: list[int] = []

    def produce(source: BlockSource) -> None:
        for i in range(5):
            source.put(np.zeros(1000, np.float32))
            put.append(i)

    before = set(threading.enumerate())
    source = BlockSource(produce, max_seconds=BOUND)
    assert wait_until(lambda: len(put) == 1)
    time.sleep(0.2)
    assert put == [0]
    t0 = time.monotonic()
    source.close()  # joins the thread (2 s at most)
    assert time.monotonic() - t0 < 1.0
    assert put == list(range(5))  # its later puts returned at once: the source is closing
    assert set(threading.enumerate()) - before == set()


def test_a_full_microphone_source_drops_with_a_counted_warning(caplog: pytest.LogCaptureFixture) -> None:
    source = BlockSource(max_seconds=BOUND, policy="drop")
    with caplog.at_level(logging.WARNING, logger="qwen_whisper_compat.live"):
        t0 = time.monotonic()
        for i in range(5):  # no consumer: the first block waits, the others do not fit
            source.put(np.full(1000, i, np.float32))
        assert time.monotonic() - t0 < 0.05  # never waits
        assert source.dropped_samples == 4000 and source.dropped_seconds == pytest.approx(0.25)
        assert len(caplog.records) == 1  # one warning for the run of dropped blocks
        assert "dropping audio" in caplog.records[0].getMessage() and "0.1 s dropped" in caplog.records[0].getMessage()
        source.end()
        assert np.array_equal(np.concatenate(list(source)), np.zeros(1000, np.float32))
        source = BlockSource(max_seconds=BOUND, policy="drop")
        source.put(np.zeros(1000, np.float32))
        source.put(np.zeros(1000, np.float32))  # dropped: a second warning only after a block got through
        source.put(np.zeros(500, np.float32))  # fits: the run ends
        source.put(np.zeros(1000, np.float32))
        assert source.dropped_samples == 2000 and len(caplog.records) == 3


def test_one_block_larger_than_the_bound_is_taken_alone() -> None:
    source = BlockSource(max_seconds=BOUND, policy="drop")
    source.put(np.zeros(5 * SR, np.float32))
    source.end()
    assert source.dropped_samples == 0 and sum(b.size for b in source) == 5 * SR


def test_bad_policy_and_bound() -> None:
    with pytest.raises(ValueError, match="policy"):
        BlockSource(policy="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_seconds"):
        BlockSource(max_seconds=0)


class FakeCard:
    """sounddevice.InputStream's signature: plays a tone at the rate it is opened at, from its own thread."""

    opened: ClassVar[list[FakeCard]] = []
    seconds: ClassVar[float] = 1.0
    pace: ClassVar[float] = 0.002  # seconds between callbacks

    def __init__(self, samplerate: int, channels: int, dtype: str, blocksize: int, device: Any, callback: Any) -> None:
        self.samplerate, self.channels, self.dtype, self.blocksize = samplerate, channels, dtype, blocksize
        self.callback, self.stopped, self.closed, self.slowest = callback, threading.Event(), False, 0.0
        self.done = False
        self.thread = threading.Thread(target=self._play, daemon=True)
        FakeCard.opened.append(self)

    def start(self) -> None:
        self.thread.start()

    def _play(self) -> None:
        n = int(self.seconds * self.samplerate)
        tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / self.samplerate)).astype(np.float32)
        for i in range(0, n, self.blocksize):
            if self.stopped.is_set():
                return
            block = tone[i : i + self.blocksize, None]
            t0 = time.monotonic()
            self.callback(block, block.shape[0], None, None)
            self.slowest = max(self.slowest, time.monotonic() - t0)
            time.sleep(self.pace)
        self.done = True

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)

    def close(self) -> None:
        self.closed = True


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / SR)[int(np.argmax(spectrum))])


@pytest.fixture
def card(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in sounddevice module whose default input runs at 44.1 kHz."""
    FakeCard.opened.clear()
    module = types.SimpleNamespace(
        InputStream=FakeCard,
        query_devices=lambda device, kind: {"name": "fake", "default_samplerate": 44100.0},
    )
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def test_the_microphone_opens_at_its_own_rate_and_gives_16_khz(card: types.SimpleNamespace) -> None:
    FakeCard.seconds = 1.0
    mic = live_sources.microphone(block_seconds=0.05)
    fake = FakeCard.opened[-1]
    assert (fake.samplerate, fake.channels, fake.dtype, fake.blocksize) == (44100, 1, "float32", 2205)
    got: list[np.ndarray] = []
    deadline = time.monotonic() + 10
    for block in mic:
        got.append(block)
        if sum(b.size for b in got) >= 15000 or time.monotonic() > deadline:
            break
    mic.close()
    audio = np.concatenate(got)
    assert audio.size >= 15000 and audio.dtype == np.float32
    # a 1 kHz tone, not 363 Hz (44.1 kHz taken for 16)
    assert dominant_hz(audio[1000:15000]) == pytest.approx(1000, abs=5)
    assert fake.stopped.is_set() and fake.closed


def test_a_microphone_nobody_reads_drops_audio_and_never_waits(card: types.SimpleNamespace) -> None:
    FakeCard.seconds, FakeCard.pace = 3.0, 0.0
    try:
        mic = live_sources.microphone(block_seconds=0.1, max_seconds=1.0)
        fake = FakeCard.opened[-1]
        assert wait_until(lambda: fake.done)
        mic.close()
    finally:
        FakeCard.pace = 0.002
    assert mic.dropped_seconds == pytest.approx(2.0, abs=0.15)  # 3 s played, 1 s kept
    assert fake.slowest < 0.05


def test_a_microphone_that_cannot_be_asked_is_a_clear_error(card: types.SimpleNamespace) -> None:
    def no_device(device: Any, kind: str) -> dict[str, Any]:
        raise ValueError("No input device matching 'usb'")

    card.query_devices = no_device
    with pytest.raises(AudioLoadError, match="cannot open the microphone usb: No input device"):
        live_sources.microphone("usb")
