"""What both voice activity detectors share: faster-whisper's :class:`VadOptions`, the input check, and the
padding of speech regions (faster-whisper's rule)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.speech import check_thresholds, effective_neg_threshold
from qwen_whisper_compat.errors import UnsupportedOptionError


@dataclass(frozen=True)
class VadOptions:
    """Voice activity detection options, with faster-whisper's field names and defaults.

    ``vad_parameters`` of faster-whisper's ``transcribe`` is either this object or a dict of its fields;
    :func:`resolve_vad_options` turns either into one.
    """

    threshold: float = 0.5
    """Speech starts at a window scoring at least this: a speech probability for Silero; for the energy
    detector 0.5 means 8 dB above the local noise floor."""
    neg_threshold: float | None = None
    """Speech continues while frames score at least this; ``None`` means ``threshold - 0.15``, at least 0.01 and
    at most ``threshold`` (:func:`~qwen_whisper_compat.engine.speech.effective_neg_threshold`)."""
    min_speech_duration_ms: int = 0
    """Speech regions not longer than this are dropped."""
    max_speech_duration_s: float = float("inf")
    """Longer regions are split (at a silence where there is one) so that padded regions stay within this."""
    min_silence_duration_ms: int = 2000
    """A region ends only after this much silence; shorter pauses are kept inside the region."""
    speech_pad_ms: int = 400
    """Each region is widened by this much on both sides."""

    def __post_init__(self) -> None:
        check_thresholds(self.threshold, self.neg_threshold)
        if self.min_speech_duration_ms < 0 or self.min_silence_duration_ms < 0 or self.speech_pad_ms < 0:
            raise UnsupportedOptionError(
                "min_speech_duration_ms, min_silence_duration_ms and speech_pad_ms must be >= 0, got "
                f"{self.min_speech_duration_ms}, {self.min_silence_duration_ms} and {self.speech_pad_ms}"
            )
        if not self.max_speech_duration_s > 0:
            raise UnsupportedOptionError(f"max_speech_duration_s must be > 0, got {self.max_speech_duration_s}")

    @property
    def effective_neg_threshold(self) -> float:
        """``neg_threshold``, or faster-whisper's default for it."""
        return effective_neg_threshold(self.threshold, self.neg_threshold)


def resolve_vad_options(parameters: VadOptions | Mapping[str, Any] | None = None) -> VadOptions:
    """faster-whisper's ``vad_parameters`` (a :class:`VadOptions`, a dict of its fields, or ``None``).

    Raises:
        TypeError: A key is not a :class:`VadOptions` field (the message lists them).
        UnsupportedOptionError: A value is out of range (a ValueError).
    """
    if parameters is None:
        return VadOptions()
    if isinstance(parameters, VadOptions):
        return parameters
    check_option_names(parameters)
    return VadOptions(**parameters)


def check_option_names(parameters: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(VadOptions)]
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise TypeError(f"unknown VAD parameter(s) {', '.join(unknown)}; expected some of: {', '.join(names)}")


def as_mono(audio: np.ndarray) -> np.ndarray:
    samples = np.asarray(audio)
    if samples.ndim != 1:
        raise ValueError(f"audio must be 1-D mono samples, got shape {samples.shape}")
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"audio must hold float samples in [-1, 1], got dtype {samples.dtype}")
    return samples


def pad_regions(regions: list[tuple[int, int]], pad: int, num_samples: int) -> list[dict[str, int]]:
    """Widen each region by ``pad`` samples, sharing gaps shorter than ``2 * pad`` half and half."""
    out = [{"start": s, "end": e} for s, e in regions]
    for i, region in enumerate(out):
        if i == 0:
            region["start"] = max(0, region["start"] - pad)
        if i + 1 < len(out):
            share = min(pad, (out[i + 1]["start"] - region["end"]) // 2)
            region["end"] += share
            out[i + 1]["start"] -= share
        else:
            region["end"] = min(num_samples, region["end"] + pad)
    return out
