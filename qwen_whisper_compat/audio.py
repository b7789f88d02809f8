"""Audio input: any file PyAV can open -> float32 mono 16 kHz in [-1, 1]. No ffmpeg binary needed.

Mirrors ``whisper.audio`` (:data:`SAMPLE_RATE`, :func:`load_audio`); :func:`prepare_audio` also takes
arrays, which whisper treats as 16 kHz mono float32.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any, BinaryIO

import numpy as np

from qwen_whisper_compat.engine.mel import HOP_LENGTH, N_FFT, SAMPLE_RATE
from qwen_whisper_compat.errors import AudioLoadError

logger = logging.getLogger("qwen_whisper_compat.audio")

__all__ = ["HOP_LENGTH", "N_FFT", "SAMPLE_RATE", "AudioInput", "load_audio", "prepare_audio"]

AudioSource = str | os.PathLike[str] | bytes | BinaryIO
#: Anything the transcription entry points accept: a file (path, bytes, binary file object) or samples.
AudioInput = AudioSource | np.ndarray


def load_audio(file: AudioSource, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of ``file`` into mono float32 samples at ``sr`` Hz.

    Any container and codec PyAV's bundled FFmpeg reads works (wav, flac, mp3, ogg/opus, m4a/aac, and the
    audio track of mp4/mkv/webm videos). Channels are averaged, as the official Qwen3-ASR front end does;
    resampling is libswresample's.

    Args:
        file: A path, the file's bytes, or a binary file object.
        sr: Target sample rate.

    Raises:
        AudioLoadError: The file is missing, cannot be decoded, has no audio stream, or holds no samples.
    """
    import av

    name = _describe(file)
    source: Any = io.BytesIO(file) if isinstance(file, bytes) else file
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str) and not os.path.isfile(source):
        raise AudioLoadError(f"audio file {name} does not exist")
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
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        raise AudioLoadError(f"cannot decode audio from {name}: {e}") from e
    if not chunks:
        raise AudioLoadError(f"{name} holds no audio samples")
    planar = np.concatenate(chunks, axis=1)  # [channels, samples]
    mono = planar.mean(axis=0, dtype=np.float32) if planar.shape[0] > 1 else planar[0]
    if mono.size == 0:
        raise AudioLoadError(f"{name} holds no audio samples")
    return np.clip(np.ascontiguousarray(mono, dtype=np.float32), -1.0, 1.0)


def prepare_audio(audio: AudioInput | Any) -> np.ndarray:
    """Audio as float32 mono 16 kHz samples: files are decoded, arrays are checked.

    Arrays (numpy, or anything with ``.numpy()`` such as a CPU torch tensor) must already be 16 kHz
    floating-point samples in [-1, 1], as whisper expects. A 2-D array with at most 8 channels on one axis
    is downmixed with a warning.

    Raises:
        AudioLoadError: Unreadable file, or an array of the wrong kind (integer or complex samples,
            more than two dimensions, no samples, non-finite values).
    """
    if isinstance(audio, (str, os.PathLike, bytes)) or hasattr(audio, "read"):
        return load_audio(audio)  # type: ignore[arg-type]
    if not isinstance(audio, np.ndarray) and hasattr(audio, "numpy"):
        audio = audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio.numpy()
    if not isinstance(audio, np.ndarray):
        raise AudioLoadError(
            f"cannot use {type(audio).__name__} as audio: pass a file path, bytes, a binary file object "
            "or a float32 numpy array of 16 kHz samples"
        )
    return _check_array(audio)


def _check_array(a: np.ndarray) -> np.ndarray:
    if not np.issubdtype(a.dtype, np.floating):
        hint = " (divide int16 samples by 32768)" if np.issubdtype(a.dtype, np.integer) else ""
        raise AudioLoadError(f"audio arrays must hold float samples in [-1, 1], got dtype {a.dtype}{hint}")
    if a.ndim == 2:
        channel_axis = 0 if a.shape[0] <= 8 and a.shape[1] > a.shape[0] else 1
        if a.shape[channel_axis] > 8:
            raise AudioLoadError(f"audio array of shape {a.shape} is not mono or multi-channel samples")
        logger.warning("audio array has %d channels; averaging them to mono", a.shape[channel_axis])
        a = a.mean(axis=channel_axis)
    elif a.ndim != 1:
        raise AudioLoadError(f"audio arrays must be 1-D mono samples (or 2-D channels), got shape {a.shape}")
    if a.size == 0:
        raise AudioLoadError("the audio array holds no samples")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise AudioLoadError("the audio array holds NaN or infinite samples")
    return a


def _describe(file: AudioSource) -> str:
    if isinstance(file, bytes):
        return f"<{len(file)} bytes>"
    if isinstance(file, (str, os.PathLike)):
        return repr(os.fspath(file))
    return repr(getattr(file, "name", "<file object>"))
