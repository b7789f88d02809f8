"""faster-whisper's public-API tests (tests/test_transcribe.py of faster-whisper 1.2.1), adapted to our
package on the tiny models: empty audio, monotonic timestamps, structure of segments and info, stereo
input, VAD options, hotwords. Exact texts are not portable (random tiny weights); the invariants are."""

from __future__ import annotations

import types
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qwen_whisper_compat import BatchedInferencePipeline, WhisperModel, decode_audio


@pytest.fixture(scope="module")
def model(under_model_env: Any) -> Any:
    m = under_model_env(WhisperModel, "tiny", device="cpu", compute_type="default")
    yield m
    m.model.close()


def test_empty_audio(model: Any) -> None:
    audio = np.asarray([], dtype="float32")
    segments, _ = model.transcribe(audio)
    assert list(segments) == []
    segments, _ = BatchedInferencePipeline(model).transcribe(audio)
    assert list(segments) == []
    language, probability, ranked = model.detect_language(audio)
    assert (language, probability) == ranked[0] and language in model.supported_languages


def test_monotonic_timestamps(model: Any, shared_audio: Path) -> None:
    segments, info = model.transcribe(str(shared_audio / "jfk.flac"), word_timestamps=True, temperature=0.0)
    segments = list(segments)
    assert segments
    for i in range(len(segments) - 1):
        assert segments[i].start <= segments[i].end
        assert segments[i].end <= segments[i + 1].start
        for word in segments[i].words:
            assert word.start <= word.end
            assert word.end <= segments[i].end
    assert segments[-1].end <= info.duration


def test_transcribe_structure(model: Any, shared_audio: Path) -> None:
    segments, info = model.transcribe(str(shared_audio / "jfk.flac"), word_timestamps=True, temperature=0.0)
    assert isinstance(segments, types.GeneratorType)  # lazy: decoding happens while iterating
    ranked = info.all_language_probs
    assert ranked == model.detect_language(decode_audio(str(shared_audio / "jfk.flac")))[2]
    assert ranked and {code for code, _ in ranked} <= set(model.supported_languages)
    assert [p for _, p in ranked] == sorted((p for _, p in ranked), reverse=True) and 0 < ranked[0][1] <= 1
    assert info.duration == 11
    top_language, top_probability = ranked[0]
    assert (info.language, info.language_probability) == (top_language, top_probability)
    assert info.language in model.supported_languages
    segments = list(segments)
    assert [s.id for s in segments] == list(range(1, len(segments) + 1))
    for segment in segments:
        assert segment.text == "".join(w.word for w in segment.words)
        assert segment.start == segment.words[0].start
        assert segment.end == segment.words[-1].end
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        as_dict = segments[0]._asdict()
    assert as_dict["id"] == 1 and caught and caught[0].category is DeprecationWarning


def test_words_only_when_requested(model: Any, shared_audio: Path) -> None:
    segments, info = model.transcribe(str(shared_audio / "jfk.flac"), language="en", temperature=0.0)
    segments = list(segments)
    assert segments and all(s.words is None for s in segments)
    assert info.language == "en" and info.language_probability == 1


def test_stereo_input(model: Any, shared_audio: Path) -> None:
    left, right = decode_audio(str(shared_audio / "stereo_diarization.wav"), split_stereo=True)
    assert left.shape == right.shape and not np.allclose(left, right)
    for channel in (left, right):
        segments, info = model.transcribe(channel, language="en", temperature=0.0)
        assert list(segments) and info.duration == pytest.approx(5.0, abs=0.01)
    stereo = np.stack([left, right])  # a 2-D array is downmixed, with a warning in the log
    segments, info = model.transcribe(stereo, language="en", temperature=0.0)
    assert list(segments) and info.duration == pytest.approx(5.0, abs=0.01)


def test_vad(model: Any, shared_audio: Path) -> None:
    segments, info = model.transcribe(
        str(shared_audio / "jfk.flac"),
        vad_filter=True,
        vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200},
        language="en",
        temperature=0.0,
    )
    segments = list(segments)
    assert segments
    assert info.vad_options.min_silence_duration_ms == 500 and info.vad_options.speech_pad_ms == 200
    assert 0 < info.duration_after_vad < info.duration
    assert 0 <= segments[0].start and segments[-1].end <= 11.0


def spy_on_runs(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The engine options of every transcription (the real engine still runs)."""
    runs: list[Any] = []
    recognizer = model.model.recognizer
    real = recognizer.segments

    def segments(samples: np.ndarray, run: Any, on_progress: Any = None) -> Any:
        runs.append(run)
        return real(samples, run, on_progress=on_progress)

    monkeypatch.setattr(recognizer, "segments", segments)
    return runs


def test_hotwords_are_echoed_and_reach_every_chunk(
    model: Any, shared_audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = spy_on_runs(model, monkeypatch)
    segments, info = model.transcribe(str(shared_audio / "hotwords.mp3"), hotwords="ComfyUI", temperature=0.0)
    list(segments)
    assert info.transcription_options.hotwords == "ComfyUI"
    assert runs[0].context == "ComfyUI" and runs[0].carry_context


def test_batched_pipeline(model: Any, shared_audio: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = spy_on_runs(model, monkeypatch)
    segments, info = BatchedInferencePipeline(model).transcribe(str(shared_audio / "jfk.flac"), batch_size=4)
    segments = list(segments)
    assert segments and [s.id for s in segments] == list(range(1, len(segments) + 1))
    assert segments[-1].end <= info.duration
    assert runs[0].batch_size == 4  # decoded through the batched engine path
    assert info.vad_options is not None  # vad_filter defaults to True in the batched pipeline
