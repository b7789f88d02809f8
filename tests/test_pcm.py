"""Raw live audio from the host protocols -> 16 kHz mono float32 (qwen_whisper_compat.pcm)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from qwen_whisper_compat import load_audio
from qwen_whisper_compat.errors import AudioLoadError
from qwen_whisper_compat.pcm import PcmConverter, g711_table


def _convert(converter: PcmConverter, data: bytes, piece: int) -> np.ndarray:
    return np.concatenate([converter.convert(data[i : i + piece]) for i in range(0, len(data), piece)] + [converter.flush()])


@pytest.fixture(scope="module")
def speech(shared_audio: Path) -> np.ndarray:
    return load_audio(shared_audio / "jfk.flac")[: 16000 * 3]


def _ints(x: np.ndarray, width: int) -> bytes:
    scale = float(1 << (8 * width - 1))
    v = np.clip(np.round(x.astype(np.float64) * scale), -scale, scale - 1).astype(np.int64)
    if width == 3:
        u = (v & 0xFFFFFF).astype(np.uint32)
        return np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    return v.astype({1: "i1", 2: "<i2", 4: "<i4"}[width]).tobytes()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_width_decodes_to_the_samples(speech: np.ndarray, width: int) -> None:
    got = _convert(PcmConverter(16000, width=width), _ints(speech, width), 999)  # pieces cut inside samples
    assert got.shape == speech.shape and got.dtype == np.float32
    assert np.abs(got - speech).max() <= 1.5 / (1 << (8 * width - 1))


def test_channels_are_averaged_and_chunking_does_not_matter(speech: np.ndarray) -> None:
    stereo = np.stack([speech, 0.5 * speech], axis=1).reshape(-1)
    data = _ints(stereo, 2)
    whole = _convert(PcmConverter(16000, channels=2), data, len(data))
    assert np.abs(whole - 0.75 * speech).max() < 1e-4
    c = PcmConverter(16000, channels=2)
    assert c.convert(data[:3]).size == 0  # not a whole frame yet
    assert np.array_equal(np.concatenate([c.convert(data[3:]), c.flush()]), whole)


def test_resampling_is_libswresample_like_load_audio(speech: np.ndarray) -> None:
    """44.1 kHz stereo in 1024-frame chunks (what a Wyoming satellite may send) gives what load_audio gives
    for the same audio as a wav file, whatever the chunks."""
    rate = 44100
    up = load_audio(_wav(speech, 16000), sr=rate)
    stereo = _ints(np.repeat(up, 2), 2)
    wav = _wav(np.repeat(up, 2), rate, channels=2)
    expected = load_audio(wav)
    a = _convert(PcmConverter(rate, channels=2), stereo, 1024 * 4)
    b = _convert(PcmConverter(rate, channels=2), stereo, 333)
    assert np.array_equal(a, b)
    assert abs(a.size - expected.size) <= 2
    n = min(a.size, expected.size)
    assert np.abs(a[:n] - expected[:n]).max() < 2e-3


#: ITU-T G.711 decoder outputs of a few codes as 16-bit linear values: mu-law's 14-bit outputs x 4 (8031 is
#: its largest), A-law's 13-bit outputs x 8 (4032 its largest, 1 its smallest), both with the sign bit 0x80.
MULAW = {0x00: -32124, 0x0F: -16764, 0x55: -716, 0x70: -120, 0x7F: 0, 0x80: 32124, 0xC0: 1884, 0xF0: 120, 0xFF: 0}
ALAW = {0x00: -5504, 0x2A: -32256, 0x55: -8, 0x7F: -848, 0x80: 5504, 0xAA: 32256, 0xD4: 24, 0xD5: 8, 0xFF: 848}


@pytest.mark.parametrize(("encoding", "known", "distinct"), [("mulaw", MULAW, 255), ("alaw", ALAW, 256)])
def test_g711_decodes_the_itu_values(encoding: str, known: dict[int, int], distinct: int) -> None:
    table = g711_table(encoding)
    assert table.dtype == np.float32 and table.shape == (256,)
    assert {code: int(table[code] * 32768) for code in known} == known
    assert np.array_equal(table[:128], -table[128:])  # the sign bit alone flips the sign
    assert len(set(table.tolist())) == distinct  # mu-law has a +0 and a -0
    codes = bytes(range(256))
    assert np.array_equal(PcmConverter(8000, width=1, encoding=encoding)._decode(codes), table)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"rate": 0}, "rate"), ({"rate": 500}, "8000 Hz"), ({"rate": 16000, "width": 5}, "width"),
     ({"rate": 16000, "channels": 0}, "channels"), ({"rate": 8000, "width": 2, "encoding": "mulaw"}, "1 byte"),
     ({"rate": 8000, "encoding": "opus"}, "encoding"), ({"rate": 16000.0}, "rate")],
)  # fmt: skip
def test_bad_formats_are_clear_errors(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(AudioLoadError, match=message):
        PcmConverter(**kwargs)


def _wav(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(_ints(samples, 2))
    return out.getvalue()
