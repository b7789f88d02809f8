"""Audio input: any file PyAV can open -> float32 mono 16 kHz in [-1, 1]. No ffmpeg binary needed.

Mirrors ``whisper.audio``: :data:`SAMPLE_RATE`, :func:`load_audio`.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np

from qwen_whisper_compat.errors import AudioLoadError

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160

AudioSource = str | os.PathLike[str] | bytes | BinaryIO


def load_audio(file: AudioSource, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of ``file`` into mono float32 samples at ``sr`` Hz.

    Channels are averaged (as the official Qwen3-ASR front end does); resampling is libswresample's.

    Args:
        file: A path, the file's bytes, or a binary file object.
        sr: Target sample rate.

    Raises:
        AudioLoadError: The file cannot be opened, has no audio stream, or holds no samples.
    """
    import av

    name = _describe(file)
    source: str | BinaryIO = io.BytesIO(file) if isinstance(file, bytes) else file  # type: ignore[assignment]
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    chunks: list[np.ndarray] = []
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioLoadError(f"{name} has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=sr)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except AudioLoadError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise AudioLoadError(f"cannot decode audio from {name}: {e}") from e
    if not chunks:
        raise AudioLoadError(f"{name} holds no audio samples")
    planar = np.concatenate(chunks, axis=1)  # [channels, samples]
    mono = planar.mean(axis=0, dtype=np.float32) if planar.shape[0] > 1 else planar[0]
    if mono.size == 0:
        raise AudioLoadError(f"{name} holds no audio samples")
    return np.clip(np.ascontiguousarray(mono, dtype=np.float32), -1.0, 1.0)


def _describe(file: AudioSource) -> str:
    if isinstance(file, bytes):
        return f"<{len(file)} bytes>"
    if isinstance(file, (str, os.PathLike)):
        return repr(os.fspath(file))
    return repr(getattr(file, "name", "<file object>"))
