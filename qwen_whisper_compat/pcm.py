"""Raw audio from a live source (any rate, sample width and channel count, or G.711) -> 16 kHz mono float32.

The host protocols send raw audio in the client's format: OpenAI's Realtime API PCM16 at 24 kHz (or G.711
at 8 kHz), Wyoming any rate, width and channel count. :class:`PcmConverter` turns a stream of such byte
chunks into the samples the live engine takes. It carries an incomplete frame and the resampler's state
from one chunk to the next, so how the stream is cut into chunks does not change the samples. Channels are
averaged and resampling is libswresample's (PyAV), as :func:`~.audio.load_audio` does for files.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.errors import AudioLoadError

__all__ = ["Encoding", "PcmConverter", "g711_table"]

#: ``"pcm"``: little-endian signed integers (8-bit samples are signed, as Wyoming's own converter reads
#: them); ``"mulaw"`` / ``"alaw"``: G.711, one byte per sample.
Encoding = Literal["pcm", "mulaw", "alaw"]

_MAX_RATE = 768_000
_MAX_CHANNELS = 64


class PcmConverter:
    """A stream of raw audio chunks in one format -> 16 kHz mono float32 samples in [-1, 1].

    Args:
        rate: Sample rate of the input (Hz).
        width: Bytes per sample: 1, 2, 3 or 4 for ``"pcm"``; 1 for G.711.
        channels: Interleaved channels (averaged into one).
        encoding: See :data:`Encoding`.

    Raises:
        AudioLoadError: A format that is not one of these (the message says which part).
    """

    def __init__(self, rate: int, width: int = 2, channels: int = 1, encoding: Encoding = "pcm") -> None:
        for name, value, top in (("rate", rate, _MAX_RATE), ("width", width, 4), ("channels", channels, _MAX_CHANNELS)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise AudioLoadError(f"audio {name} must be a whole number from 1 to {top}, got {value!r}")
        if encoding not in ("pcm", "mulaw", "alaw"):
            raise AudioLoadError(f"audio encoding must be 'pcm', 'mulaw' or 'alaw', got {encoding!r}")
        if encoding != "pcm" and width != 1:
            raise AudioLoadError(f"G.711 ({encoding}) audio has 1 byte per sample, got width {width}")
        if rate < 1000:
            raise AudioLoadError(f"an audio rate of {rate} Hz is not a speech sample rate: send 8000 Hz or more")
        self.rate, self.width, self.channels, self.encoding = rate, width, channels, encoding
        self._frame = width * channels
        self._rest = b""
        self._resampler: Any = None
        self._table = g711_table(encoding) if encoding != "pcm" else None

    def convert(self, data: bytes) -> np.ndarray:
        """The 16 kHz samples ``data`` completes (a trailing incomplete frame waits for the next chunk)."""
        data = self._rest + bytes(data)
        whole = len(data) // self._frame * self._frame
        self._rest = data[whole:]
        if whole == 0:
            return np.zeros(0, np.float32)
        x = self._decode(data[:whole])
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        return self._resample(x)

    def convert_samples(self, samples: np.ndarray) -> np.ndarray:
        """The 16 kHz samples of float samples at ``rate`` (mono, in [-1, 1]; a sound card's), through the
        same resampler and its state as :meth:`convert`."""
        return self._resample(np.asarray(samples, dtype=np.float32).reshape(-1))

    def flush(self) -> np.ndarray:
        """The samples the resampler still holds, at the end of the stream (an incomplete frame is dropped).
        The converter then starts afresh."""
        self._rest = b""
        if self._resampler is None:
            return np.zeros(0, np.float32)
        out = _samples(self._resampler.resample(None))
        self._resampler = None
        return out

    def _decode(self, data: bytes) -> np.ndarray:
        if self._table is not None:
            return self._table[np.frombuffer(data, np.uint8)]
        if self.width == 1:
            return np.frombuffer(data, np.int8).astype(np.float32) / 128.0
        if self.width == 2:
            return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if self.width == 4:
            return (np.frombuffer(data, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return (v / float(1 << 23)).astype(np.float32)

    def _resample(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)
        if self.rate == SAMPLE_RATE:
            return x
        import av

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :]), format="flt", layout="mono")
        frame.sample_rate = self.rate
        return _samples(self._resampler.resample(frame))


def _samples(frames: list[Any]) -> np.ndarray:
    if not frames:
        return np.zeros(0, np.float32)
    out = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32, copy=False)
    return np.clip(out, -1.0, 1.0)


def g711_table(encoding: Literal["mulaw", "alaw"] | str) -> np.ndarray:
    """The 256 float32 values (16-bit linear / 32768) of G.711 mu-law or A-law bytes (ITU-T G.711)."""
    codes = np.arange(256, dtype=np.int32)
    if encoding == "mulaw":
        u = ~codes & 0xFF
        magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
        linear = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    elif encoding == "alaw":
        a = codes ^ 0x55
        exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
        magnitude = np.where(
            exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
        )
        linear = np.where(a & 0x80, magnitude, -magnitude)
    else:
        raise AudioLoadError(f"G.711 encoding must be 'mulaw' or 'alaw', got {encoding!r}")
    return (linear / 32768.0).astype(np.float32)
