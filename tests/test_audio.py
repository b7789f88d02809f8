"""Audio loading: real containers and codecs written with PyAV, arrays, and every bad input."""

from __future__ import annotations

import io
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from qwen_whisper_compat.audio import SAMPLE_RATE, load_audio, prepare_audio
from qwen_whisper_compat.errors import AudioLoadError


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(x, (channels, 1))


def write_media(
    path: Path, samples: np.ndarray, rate: int, codec: str, fmt: str | None = None, video: bool = False
) -> Path:
    """Encode planar float samples ``[channels, n]`` (and optionally a video track) with PyAV."""
    channels = samples.shape[0]
    with av.open(str(path), "w", format=fmt) as out:
        if video:
            vs = out.add_stream("mpeg4", rate=10)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        stream = out.add_stream(codec, rate=rate, layout="mono" if channels == 1 else "stereo")
        fmt_name = stream.codec_context.codec.audio_formats[0].name
        frame_size = stream.codec_context.frame_size or 1024
        n = samples.shape[1]
        for i in range(0, n, frame_size):
            block = samples[:, i : i + frame_size]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, dtype=np.float32), format="fltp",
                                               layout=stream.layout.name)  # fmt: skip
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            resampler = av.AudioResampler(format=fmt_name, layout=stream.layout.name, rate=rate)
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if video:
            for k in range(int(n / rate * 10)):
                img = np.full((48, 64, 3), k * 7 % 255, dtype=np.uint8)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
                vf.pts = k
                for packet in vs.encode(vf):
                    out.mux(packet)
            for packet in vs.encode(None):
                out.mux(packet)
    return path


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SAMPLE_RATE / len(x))


CASES = [
    # (file name, codec, container, rate, channels, seconds, video)
    ("a.flac", "flac", None, 44100, 2, 3.0, False),
    ("a.mp3", "libmp3lame", None, 44100, 2, 3.0, False),
    ("a8k.wav", "pcm_s16le", None, 8000, 1, 3.0, False),
    ("a44.wav", "pcm_s16le", None, 44100, 2, 3.0, False),
    ("a.opus", "libopus", "ogg", 48000, 1, 3.0, False),
    ("a.m4a", "aac", "mp4", 44100, 2, 3.0, False),
    ("a.mp4", "aac", "mp4", 44100, 2, 3.0, True),
    ("short.wav", "pcm_s16le", None, 16000, 1, 0.2, False),
]


@pytest.mark.parametrize(("name", "codec", "fmt", "rate", "channels", "seconds", "video"), CASES)
def test_formats_decode_to_16k_mono(
    tmp_path: Path, name: str, codec: str, fmt: str | None, rate: int, channels: int, seconds: float, video: bool
) -> None:
    path = write_media(tmp_path / name, tone(seconds, rate, channels=channels), rate, codec, fmt, video)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - seconds * SAMPLE_RATE) <= 0.03 * SAMPLE_RATE  # codec delay/padding at most 30 ms
    if seconds >= 1:
        assert abs(peak_hz(audio[SAMPLE_RATE // 2 : -SAMPLE_RATE // 2]) - 440) < 5
    assert np.abs(audio).max() <= 1.0


def test_real_clips(shared_audio: Path) -> None:
    expected = {"jfk.flac": 11.0, "multilingual.mp3": 59.9, "aishell_BAC009S0724W0121.wav": 4.281}
    for name, seconds in expected.items():
        assert abs(len(load_audio(shared_audio / name)) / SAMPLE_RATE - seconds) < 0.05, name


def test_channels_are_averaged(tmp_path: Path) -> None:
    left = tone(2.0, 16000)[0]
    path = write_media(tmp_path / "lr.wav", np.stack([left, np.zeros_like(left)]), 16000, "pcm_s16le")
    audio = load_audio(path)
    assert np.abs(audio).max() == pytest.approx(0.25, abs=0.01)


def test_silence_stays_silent(tmp_path: Path) -> None:
    path = write_media(tmp_path / "silence.wav", np.zeros((1, 48000), np.float32), 16000, "pcm_s16le")
    audio = load_audio(path)
    assert len(audio) == 48000 and not audio.any()


def test_bytes_and_file_objects(tmp_path: Path) -> None:
    path = write_media(tmp_path / "a.flac", tone(1.0, 22050), 22050, "flac")
    data = path.read_bytes()
    from_path = load_audio(path)
    np.testing.assert_array_equal(load_audio(data), from_path)
    np.testing.assert_array_equal(load_audio(io.BytesIO(data)), from_path)
    with open(path, "rb") as fh:
        np.testing.assert_array_equal(prepare_audio(fh), from_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioLoadError, match="empty.wav"):
        load_audio(path)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(AudioLoadError, match=r"corrupt.mp3"):
        load_audio(path)


def test_truncated_file_fails_clearly(tmp_path: Path) -> None:
    path = write_media(tmp_path / "a.flac", tone(3.0, 16000), 16000, "flac")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(AudioLoadError, match="a.flac"):
        load_audio(path)


def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for k in range(10):
            vf = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
            vf.pts = k
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
    with pytest.raises(AudioLoadError, match="has no audio stream"):
        load_audio(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioLoadError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")


def test_arrays(caplog: pytest.LogCaptureFixture) -> None:
    x = tone(1.0, 16000)[0]
    assert prepare_audio(x) is not None and prepare_audio(x).dtype == np.float32
    np.testing.assert_allclose(prepare_audio(x.astype(np.float64)), x, atol=1e-7)
    with caplog.at_level(logging.WARNING, logger="qwen_whisper_compat.audio"):
        mono = prepare_audio(np.stack([x, np.zeros_like(x)]))
    assert "averaging them to mono" in caplog.text
    np.testing.assert_allclose(mono, x / 2, atol=1e-7)
    np.testing.assert_allclose(prepare_audio(np.stack([x, x], axis=1)), x, atol=1e-7)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(16000, np.int16), "dtype int16 .*32768"),
        (np.zeros((2, 3, 100), np.float32), "1-D mono"),
        (np.zeros(0, np.float32), "no samples"),
        (np.array([0.0, np.nan], np.float32), "NaN"),
        (np.zeros((100, 100), np.float32), "not mono"),
    ],
)
def test_bad_arrays(array: np.ndarray, message: str) -> None:
    with pytest.raises(AudioLoadError, match=message):
        prepare_audio(array)


def test_unsupported_object() -> None:
    with pytest.raises(AudioLoadError, match="cannot use list as audio"):
        prepare_audio([0.0, 0.1])
