"""``inspect.signature`` parity with the installed upstream packages: parameter names, order, kinds and
defaults of every entry point a script calls (annotations may differ: ours name no torch types)."""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import faster_whisper
import pytest
import whisper
import whisper.audio
import whisper.decoding

import qwen_whisper_compat as ours
import qwen_whisper_compat.audio
import qwen_whisper_compat.faster


def shape(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, kind, default) of each parameter; a dataclass default compares by its fields."""

    def default(value: Any) -> Any:
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value

    return [(p.name, p.kind, default(p.default)) for p in inspect.signature(fn).parameters.values()]


PAIRS = {
    "whisper.transcribe": (whisper.transcribe, ours.transcribe),
    "whisper.load_model": (whisper.load_model, ours.load_model),
    "whisper.available_models": (whisper.available_models, ours.available_models),
    "whisper.load_audio": (whisper.audio.load_audio, ours.audio.load_audio),
    "whisper.pad_or_trim": (whisper.audio.pad_or_trim, ours.audio.pad_or_trim),
    "whisper.log_mel_spectrogram": (whisper.audio.log_mel_spectrogram, ours.audio.log_mel_spectrogram),
    "whisper.decode": (whisper.decoding.decode, ours.decode),
    "whisper.detect_language": (whisper.decoding.detect_language, ours.detect_language),
    "WhisperModel.__init__": (faster_whisper.WhisperModel.__init__, ours.WhisperModel.__init__),
    "WhisperModel.transcribe": (faster_whisper.WhisperModel.transcribe, ours.WhisperModel.transcribe),
    "WhisperModel.detect_language": (faster_whisper.WhisperModel.detect_language, ours.WhisperModel.detect_language),
    "BatchedInferencePipeline.__init__": (
        faster_whisper.BatchedInferencePipeline.__init__, ours.BatchedInferencePipeline.__init__),
    "BatchedInferencePipeline.transcribe": (
        faster_whisper.BatchedInferencePipeline.transcribe, ours.BatchedInferencePipeline.transcribe),
    "decode_audio": (faster_whisper.decode_audio, ours.decode_audio),
}  # fmt: skip


#: Entry points where ours adds optional keyword-only parameters after upstream's (``load_model``'s options;
#: ``diarize``, ``min_speakers``, ``max_speakers`` on faster-whisper's transcribe).
OURS_AFTER = ("whisper.load_model", "WhisperModel.transcribe", "BatchedInferencePipeline.transcribe")


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_signature_matches_upstream(name: str) -> None:
    upstream, mine = PAIRS[name]
    expected = shape(upstream)
    got = shape(mine)
    if name in OURS_AFTER:  # ours adds optional keyword-only options after upstream's parameters
        got = [p for p in got if p[1] is not inspect.Parameter.KEYWORD_ONLY or p[2] is inspect.Parameter.empty]
    assert got == expected


def test_batched_signature_is_the_sequential_one_plus_batch_size() -> None:
    """faster-whisper's own test_transcribe_signature, on our classes."""
    sequential = inspect.signature(ours.WhisperModel.transcribe).parameters
    batched = inspect.signature(ours.BatchedInferencePipeline.transcribe).parameters
    assert set(batched) - {"batch_size"} == set(sequential)


@pytest.mark.parametrize(
    ("upstream", "mine"),
    [
        (whisper.decoding.DecodingOptions, ours.DecodingOptions),
        (whisper.decoding.DecodingResult, ours.DecodingResult),
        (faster_whisper.transcribe.Word, ours.faster.Word),
        (faster_whisper.transcribe.Segment, ours.faster.Segment),
        (faster_whisper.transcribe.TranscriptionInfo, ours.faster.TranscriptionInfo),
        (faster_whisper.transcribe.TranscriptionOptions, ours.faster.TranscriptionOptions),
        (faster_whisper.vad.VadOptions, ours.faster.VadOptions),
    ],
    ids=lambda c: c.__qualname__,
)
def test_dataclass_fields_match_upstream(upstream: type, mine: type) -> None:
    def fields(cls: type) -> list[tuple[str, Any]]:
        def default(f: dataclasses.Field[Any]) -> Any:
            value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            return "nan" if isinstance(value, float) and math.isnan(value) else value

        return [(f.name, default(f)) for f in dataclasses.fields(cls)]

    # ours adds ``speaker`` (default None) after faster-whisper's fields of Segment and Word (speaker labels)
    extra = [("speaker", None)] if mine in (ours.faster.Segment, ours.faster.Word) else []
    assert fields(mine) == fields(upstream) + extra


def test_audio_constants_match_upstream() -> None:
    for name in ("SAMPLE_RATE", "N_FFT", "HOP_LENGTH", "CHUNK_LENGTH", "N_SAMPLES", "N_FRAMES",
                 "N_SAMPLES_PER_TOKEN", "FRAMES_PER_SECOND", "TOKENS_PER_SECOND"):  # fmt: skip
        assert getattr(ours.audio, name) == getattr(whisper.audio, name), name


def test_model_names_include_every_whisper_name() -> None:
    assert ours.available_models()[: len(whisper.available_models())] == whisper.available_models()
