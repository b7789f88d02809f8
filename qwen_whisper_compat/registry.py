"""Model names: which official checkpoint each name stands for, and at which precision it is converted.

Names (case-insensitive; :func:`available_models` lists them, whisper's first, in whisper's order)::

    tiny.en tiny base.en base small.en small          -> Qwen/Qwen3-ASR-0.6B   int8 encoder, q8_0 decoder
    medium.en medium large-v1 large-v2 large-v3 large -> Qwen/Qwen3-ASR-1.7B   int8 encoder, q8_0 decoder
      large-v3-turbo turbo
    qwen3-asr-0.6b[-SUFFIX]                           -> Qwen/Qwen3-ASR-0.6B
    qwen3-asr-1.7b[-SUFFIX]                           -> Qwen/Qwen3-ASR-1.7B

``SUFFIX`` is the decoder precision and the encoder's follows it: ``-f32`` (fp32 encoder), ``-f16`` (fp16),
``-q8_0`` (int8; the default without a suffix), ``-q4_k`` (int8). A ``precision`` argument overrides it. The
forced aligner ``Qwen/Qwen3-ForcedAligner-0.6B`` (name ``qwen3-forcedaligner-0.6b[-SUFFIX]``) is converted at
the same precision as the model it serves.

This is the one table of names: :func:`available_models` and every error message read from it. It opens no
file; :mod:`.hub` turns a name into a model folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qwen_whisper_compat.engine.manifest import DECODER_PRECISIONS, ENCODER_PRECISIONS
from qwen_whisper_compat.errors import UnknownModelError, UnsupportedOptionError

#: ``(encoder precision, decoder precision)``, e.g. ``("int8", "q8_0")``.
Precision = tuple[str, str]

ASR_0_6B = "Qwen/Qwen3-ASR-0.6B"
ASR_1_7B = "Qwen/Qwen3-ASR-1.7B"
ALIGNER_REPO = "Qwen/Qwen3-ForcedAligner-0.6B"

#: whisper's model names, in whisper's order (``whisper._MODELS``), and the checkpoint each one maps to.
WHISPER_NAMES: dict[str, str] = {
    "tiny.en": ASR_0_6B, "tiny": ASR_0_6B, "base.en": ASR_0_6B, "base": ASR_0_6B,
    "small.en": ASR_0_6B, "small": ASR_0_6B,
    "medium.en": ASR_1_7B, "medium": ASR_1_7B, "large-v1": ASR_1_7B, "large-v2": ASR_1_7B,
    "large-v3": ASR_1_7B, "large": ASR_1_7B, "large-v3-turbo": ASR_1_7B, "turbo": ASR_1_7B,
}  # fmt: skip
#: Names that take a precision suffix.
QWEN_NAMES: dict[str, str] = {"qwen3-asr-0.6b": ASR_0_6B, "qwen3-asr-1.7b": ASR_1_7B}
ALIGNER_NAMES: dict[str, str] = {"qwen3-forcedaligner-0.6b": ALIGNER_REPO}
#: Precision suffix -> (encoder, decoder).
PRECISIONS: dict[str, Precision] = {
    "f32": ("fp32", "f32"), "f16": ("fp16", "f16"), "q8_0": ("int8", "q8_0"), "q4_k": ("int8", "q4_k"),
}  # fmt: skip
DEFAULT_PRECISION: Precision = PRECISIONS["q8_0"]


@dataclass(frozen=True)
class ModelSpec:
    """What a model name stands for."""

    #: The name, lower-cased.
    name: str
    #: The official checkpoint, e.g. ``"Qwen/Qwen3-ASR-1.7B"``.
    repo_id: str
    #: ``(encoder, decoder)`` precision of the converted folder.
    precision: Precision


def available_models() -> list[str]:
    """Every model name ``hub.resolve_model`` accepts: whisper's 14, then the Qwen names with their suffixes."""
    return [*WHISPER_NAMES, *_with_suffixes(QWEN_NAMES)]


def available_aligners() -> list[str]:
    """Every aligner name ``hub.resolve_aligner`` accepts."""
    return _with_suffixes(ALIGNER_NAMES)


def _with_suffixes(bases: Iterable[str]) -> list[str]:
    return [name for base in bases for name in (base, *(f"{base}-{s}" for s in PRECISIONS))]


def parse_model_name(name: str, precision: str | Precision | None = None) -> ModelSpec:
    """The checkpoint and precision a model name stands for.

    Args:
        name: A name from ``available_models()`` (case-insensitive).
        precision: Overrides the name's precision: a suffix (``"f16"``) or ``(encoder, decoder)``.

    Raises:
        UnknownModelError: Unknown name or precision suffix; the message lists the valid ones.
        UnsupportedOptionError: ``precision`` is not a valid precision (a ValueError).
    """
    return _parse(name, WHISPER_NAMES, QWEN_NAMES, available_models(), precision)


def parse_aligner_name(name: str, precision: str | Precision | None = None) -> ModelSpec:
    """As ``parse_model_name``, for the names in ``available_aligners()``."""
    return _parse(name, {}, ALIGNER_NAMES, available_aligners(), precision)


def _parse(
    name: str, fixed: dict[str, str], bases: dict[str, str], valid: list[str], precision: str | Precision | None
) -> ModelSpec:
    key = name.strip().lower()
    if key in fixed:
        repo_id, default = fixed[key], DEFAULT_PRECISION
    else:
        repo_id, default = _parse_suffixed(name, key, bases, valid)
    return ModelSpec(key, repo_id, default if precision is None else to_precision(precision))


def _parse_suffixed(name: str, key: str, bases: dict[str, str], valid: list[str]) -> tuple[str, Precision]:
    for base, repo_id in bases.items():
        if key == base:
            return repo_id, DEFAULT_PRECISION
        if key.startswith(base + "-"):
            suffix = key[len(base) + 1 :]
            if suffix not in PRECISIONS:
                raise UnknownModelError(
                    f"unknown precision suffix '-{suffix}' in model name {name!r}; "
                    f"choose one of {' '.join('-' + s for s in PRECISIONS)} (e.g. {base}-q4_k)"
                )
            return repo_id, PRECISIONS[suffix]
    raise UnknownModelError(
        f"model {name!r} not found: it is neither a known model name nor an existing folder; available models = {valid}"
    )


def to_precision(precision: str | Precision) -> Precision:
    """``(encoder, decoder)`` from a suffix (``"q4_k"``, ``"-f16"``) or a validated pair.

    Raises:
        UnsupportedOptionError: Unknown suffix or precision (a ValueError).
    """
    if isinstance(precision, str):
        suffix = precision.lstrip("-").lower()
        if suffix not in PRECISIONS:
            raise UnsupportedOptionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        return PRECISIONS[suffix]
    encoder, decoder = precision
    if encoder not in ENCODER_PRECISIONS or decoder not in DECODER_PRECISIONS:
        raise UnsupportedOptionError(
            f"unknown precision {precision!r}; the encoder takes one of {', '.join(ENCODER_PRECISIONS)} "
            f"and the decoder one of {', '.join(DECODER_PRECISIONS)}"
        )
    return encoder, decoder
