"""Audio input: any file PyAV can open -> float32 mono 16 kHz in [-1, 1]. No ffmpeg binary needed.

The twin of ``whisper.audio``: its constants, :func:`load_audio`, :func:`pad_or_trim` and
:func:`log_mel_spectrogram` (numpy arrays in and out; a torch tensor in gives a torch tensor out), plus
faster-whisper's :func:`decode_audio`. :func:`prepare_audio` also takes arrays, which whisper treats as
16 kHz mono float32.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any, BinaryIO

import numpy as np

from qwen_whisper_compat.engine import mel as _mel
from qwen_whisper_compat.engine.mel import HOP_LENGTH, N_FFT, SAMPLE_RATE
from qwen_whisper_compat.errors import AudioLoadError

logger = logging.getLogger("qwen_whisper_compat.audio")

__all__ = [
    "CHUNK_LENGTH", "FRAMES_PER_SECOND", "HOP_LENGTH", "N_FFT", "N_FRAMES", "N_SAMPLES", "N_SAMPLES_PER_TOKEN",
    "SAMPLE_RATE", "TOKENS_PER_SECOND", "AudioInput", "decode_audio", "load_audio", "log_mel_spectrogram",
    "pad_or_trim", "prepare_audio",
]  # fmt: skip

#: whisper's window length in seconds and the derived sizes (Qwen3-ASR itself is not limited to 30 s).
CHUNK_LENGTH = 30
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH
TOKENS_PER_SECOND = SAMPLE_RATE // N_SAMPLES_PER_TOKEN

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
    planar = _decode_planar(file, sr)
    mono = planar.mean(axis=0, dtype=np.float32) if planar.shape[0] > 1 else planar[0]
    if mono.size == 0:
        raise AudioLoadError(f"{_describe(file)} holds no audio samples")
    return np.clip(np.ascontiguousarray(mono, dtype=np.float32), -1.0, 1.0)


def _decode_planar(file: AudioSource, sr: int) -> np.ndarray:
    """Samples ``[channels, n]`` of the first audio stream, resampled to ``sr``."""
    import av

    name = _describe(file)
    source: Any = io.BytesIO(file) if isinstance(file, bytes) else file
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if isinstance(source, str) and not os.path.isfile(source):
        if os.path.isdir(source):
            raise AudioLoadError(f"{name} is a folder, not an audio file: pass the files in it")
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
    return np.concatenate(chunks, axis=1)


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


def decode_audio(
    input_file: str | BinaryIO, sampling_rate: int = SAMPLE_RATE, split_stereo: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """faster-whisper's ``decode_audio``: mono float32 samples, or ``(left, right)`` with ``split_stereo``."""
    if not split_stereo:
        return load_audio(input_file, sampling_rate)
    planar = _decode_planar(input_file, sampling_rate)
    if planar.shape[0] != 2:
        raise AudioLoadError(f"split_stereo=True needs a 2-channel file, {_describe(input_file)} has {planar.shape[0]}")
    return planar[0].copy(), planar[1].copy()


def pad_or_trim(array: Any, length: int = N_SAMPLES, *, axis: int = -1) -> Any:
    """Zero-pad or cut ``array`` (numpy array or torch tensor) to ``length`` along ``axis``, as whisper does."""
    if not isinstance(array, np.ndarray) and hasattr(array, "detach"):  # a torch tensor: use torch itself
        import torch

        size = array.shape[axis]
        if size > length:
            return array.index_select(dim=axis, index=torch.arange(length, device=array.device))
        if size < length:
            pad = [0, 0] * array.ndim
            pad[(array.ndim - 1 - (axis % array.ndim)) * 2 + 1] = length - size
            return torch.nn.functional.pad(array, pad)
        return array
    array = np.asarray(array)
    if array.shape[axis] > length:
        return array.take(indices=range(length), axis=axis)
    if array.shape[axis] < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - array.shape[axis])
        return np.pad(array, widths)
    return array


def log_mel_spectrogram(audio: Any, n_mels: int = 80, padding: int = 0, device: Any = None) -> Any:
    """whisper's log-mel spectrogram ``[n_mels, frames]`` of a path, samples or a torch tensor.

    The Qwen3-ASR models take ``n_mels=128`` (``model.dims.n_mels``). The result is a float32 numpy array,
    or a torch tensor when ``audio`` is one (``device`` is then honoured). ``padding`` zero samples are
    appended first, as whisper does.
    """
    tensor_in = not isinstance(audio, (str, os.PathLike, np.ndarray)) and hasattr(audio, "detach")
    samples = load_audio(audio) if isinstance(audio, (str, os.PathLike)) else prepare_audio(audio)
    if padding > 0:
        samples = np.pad(samples, (0, padding))
    mel = _mel.log_mel_spectrogram(samples, n_mels=n_mels)
    if tensor_in:
        import torch

        out = torch.from_numpy(mel)
        return out.to(device) if device is not None else out.to(audio.device)
    return mel
