"""The twin of ``whisper.decoding``: :class:`DecodingOptions`, :class:`DecodingResult`, :func:`decode` and
:func:`detect_language` on a log-mel spectrogram (``log_mel_spectrogram(audio, model.dims.n_mels)``).

Arrays are numpy (torch tensors are accepted). ``language_probs`` and the probabilities of
:func:`detect_language` are keyed by whisper language codes. One spectrogram ``[n_mels, frames]`` gives one
answer; a batch (``[batch, n_mels, frames]``, or a list of spectrograms) gives a list, as in whisper.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from qwen_whisper_compat import options as opts
from qwen_whisper_compat.errors import UnsupportedOptionError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    from qwen_whisper_compat.model import Whisper

    #: One log-mel spectrogram ``[n_mels, frames]``.
    OneMel: TypeAlias = np.ndarray[tuple[int, int], Any]
    #: A batch of spectrograms: ``[batch, n_mels, frames]``, or a sequence of ``[n_mels, frames]``.
    ManyMels: TypeAlias = np.ndarray[tuple[int, int, int], Any] | Sequence[Any]


@dataclass(frozen=True)
class DecodingOptions:
    """whisper's decoding options. ``task``, ``language``, ``temperature``, ``sample_len`` and ``prompt``
    (as context text) are honoured; the others are accepted and warned about once."""

    task: str = "transcribe"
    language: str | None = None
    temperature: float = 0.0
    sample_len: int | None = None
    best_of: int | None = None
    beam_size: int | None = None
    patience: float | None = None
    length_penalty: float | None = None
    prompt: str | list[int] | None = None
    prefix: str | list[int] | None = None
    suppress_tokens: str | list[int] | None = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: float | None = 1.0
    fp16: bool = True


@dataclass(frozen=True)
class DecodingResult:
    """whisper's decoding result (``audio_features`` is the encoder output, a numpy array)."""

    audio_features: Any
    language: str
    language_probs: dict[str, float] | None = None
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    avg_logprob: float = math.nan
    no_speech_prob: float = math.nan
    temperature: float = math.nan
    compression_ratio: float = math.nan


def _mels(mel: Any) -> tuple[list[np.ndarray], bool]:
    """The spectrograms of a ``[n_mels, frames]`` or ``[batch, n_mels, frames]`` input (or a list of
    spectrograms), and whether it is a batch."""
    if isinstance(mel, (list, tuple)):
        return [m for item in mel for m in _mels(item)[0]], True
    if not isinstance(mel, np.ndarray) and hasattr(mel, "detach"):
        mel = mel.detach().cpu().numpy()
    array = np.asarray(mel, dtype=np.float32)
    if array.ndim == 2:
        return [array], False
    if array.ndim == 3:
        return list(array), True
    raise UnsupportedOptionError(f"mel must be [n_mels, frames] or [batch, n_mels, frames], got shape {array.shape}")


def _check_mels(model: Whisper, mels: list[np.ndarray]) -> None:
    for m in mels:
        if m.shape[0] != model.dims.n_mels:
            raise UnsupportedOptionError(
                f"this model takes {model.dims.n_mels} mel bins, got {m.shape[0]}: use "
                f"log_mel_spectrogram(audio, n_mels=model.dims.n_mels)"
            )


@overload
def detect_language(model: Whisper, mel: OneMel, tokenizer: Any = None) -> tuple[str, dict[str, float]]: ...
@overload
def detect_language(
    model: Whisper, mel: ManyMels, tokenizer: Any = None
) -> tuple[list[str], list[dict[str, float]]]: ...
@overload
def detect_language(model: Whisper, mel: Any, tokenizer: Any = None) -> tuple[Any, Any]: ...


def detect_language(model: Whisper, mel: Any, tokenizer: Any = None) -> tuple[Any, Any]:
    """``(language, probs)``: the most likely whisper code and ``{code: probability}`` (lists for a batch)."""
    mels, batched = _mels(mel)
    _check_mels(model, mels)
    codes, all_probs = [], []
    for m in mels:
        probs = model.recognizer.mel_language_probs(m)
        codes.append(max(probs, key=probs.__getitem__))
        all_probs.append(probs)
    if batched:
        return codes, all_probs
    return codes[0], all_probs[0]


@overload
def decode(model: Whisper, mel: OneMel, options: DecodingOptions = ..., **kwargs: Any) -> DecodingResult: ...
@overload
def decode(model: Whisper, mel: ManyMels, options: DecodingOptions = ..., **kwargs: Any) -> list[DecodingResult]: ...
@overload
def decode(
    model: Whisper, mel: Any, options: DecodingOptions = ..., **kwargs: Any
) -> DecodingResult | list[DecodingResult]: ...


def decode(
    model: Whisper, mel: Any, options: DecodingOptions = DecodingOptions(), **kwargs: Any
) -> DecodingResult | list[DecodingResult]:
    """Transcribe one spectrogram (a :class:`DecodingResult`) or a batch (a list), as whisper's ``decode``."""
    if kwargs:
        opts.check_keywords(kwargs, [f.name for f in dataclasses.fields(DecodingOptions)], "DecodingOptions")
        options = dataclasses.replace(options, **kwargs)
    opts.check_task(options.task)
    defaults = DecodingOptions()
    for name in ("best_of", "beam_size", "patience", "length_penalty", "prefix", "suppress_tokens",
                 "suppress_blank", "without_timestamps", "max_initial_timestamp", "fp16"):  # fmt: skip
        if getattr(options, name) != getattr(defaults, name):
            opts.warn_ignored(name, getattr(options, name))
    mels, batched = _mels(mel)
    _check_mels(model, mels)
    context = options.prompt if isinstance(options.prompt, str) else ""
    results = []
    for m in mels:
        decoded = model.recognizer.decode(
            m, options.language, context, temperature=options.temperature, max_new_tokens=options.sample_len
        )
        fields = {**dataclasses.asdict(decoded), "language": decoded.language or (options.language or "")}
        results.append(DecodingResult(audio_features=None, **fields))
    return results if batched else results[0]
