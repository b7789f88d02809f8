"""The transcription pipeline on tiny models: end-to-end parity with the official model, chunking, fallback,
streaming, and bounded memory on long input."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tiny_models
import torch

from qwen_whisper_compat.engine.chunking import split_at_quiet_points
from qwen_whisper_compat.engine.pipeline import Transcriber, chunk_context
from qwen_whisper_compat.engine.types import ChunkResult, PipelineStats, TranscribeOptions

SR = 16000


@pytest.fixture(scope="module")
def transcriber(asr_ckpt: Path, converted: Callable[..., Path]):  # type: ignore[no-untyped-def]
    with Transcriber(converted(asr_ckpt, "fp32", "f32"), exact=True) as t:
        yield t


@pytest.fixture(scope="module")
def speech40(jfk: np.ndarray, shared_audio: Path) -> np.ndarray:
    """40 s of real speech with natural pauses: several encoder windows, two 30 s chunks."""
    from qwen_whisper_compat.audio import load_audio

    libri = load_audio(shared_audio / "librispeech_1995-1837-0001.wav")
    aishell = load_audio(shared_audio / "aishell_BAC009S0724W0121.wav")
    return np.concatenate([jfk, libri, aishell, jfk, libri])[: 40 * SR]


def official_greedy(official, wav: np.ndarray, context: str, language: str | None, cap: int) -> list[int]:  # type: ignore[no-untyped-def]
    text = official._build_text_prompt(context=context, force_language=language)
    inputs = official.processor(text=text, audio=wav, return_tensors="pt")
    with torch.no_grad(), tiny_models.windowed_reference(official.model):
        out = official.model.generate(**inputs, max_new_tokens=cap)
    seq = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()
    return seq[:-1] if seq and seq[-1] in (151645, 151643) else seq


def text_tokens(seq: list[int], forced: bool) -> list[int]:
    return seq if forced or 151704 not in seq else seq[seq.index(151704) + 1 :]


@pytest.mark.parametrize("clip", ["jfk", "speech40"])
@pytest.mark.parametrize("language", [None, "English"])
def test_greedy_tokens_equal_official_per_chunk(
    transcriber: Transcriber, official_asr, jfk: np.ndarray, speech40: np.ndarray, clip: str, language: str | None
) -> None:
    from qwen_asr.inference.utils import parse_asr_output

    audio = jfk if clip == "jfk" else speech40
    options = TranscribeOptions(language=language, temperatures=(0.0,), context="ComfyUI, Qwen")
    results = transcriber.transcribe(audio, options)
    assert len(results) == (1 if clip == "jfk" else 2)
    previous = ""
    for r in results:
        a, b = round(r.start * SR), round(r.end * SR)
        cap = options.token_cap((b - a) / SR)
        seq = official_greedy(official_asr, audio[a:b], chunk_context(options, r.index, previous), language, cap)
        assert list(r.tokens) == text_tokens(seq, language is not None), f"chunk {r.index}"
        raw = official_asr.processor.batch_decode([seq], skip_special_tokens=True, clean_up_tokenization_spaces=False)
        lang, text = parse_asr_output(raw[0], user_language=language)
        assert (r.language, r.text) == (lang, text)
        assert r.truncated == (len(seq) == cap)
        previous = text


def test_chunks_cover_every_sample_once_and_cut_at_quiet_points() -> None:
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(10 * 60 * SR)).astype(np.float32)
    gaps = np.arange(7 * SR, len(audio), 7 * SR)  # a 200 ms pause every 7 s
    for g in gaps:
        audio[g : g + SR // 5] *= 0.001
    bounds = split_at_quiet_points(audio, SR, chunk_seconds=30, search_seconds=5)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(audio)
    assert all(b0[1] == b1[0] for b0, b1 in itertools.pairwise(bounds))
    for _, end in bounds[:-1]:
        assert np.min(np.abs(gaps - end)) < SR // 5 and gaps[np.argmin(np.abs(gaps - end))] <= end
    assert all(25 * SR <= b - a <= 35 * SR for a, b in bounds[:-1])


@pytest.mark.parametrize("seconds", [30.2, 30.5, 31.0, 45.0, 60.3, 95.0])
def test_no_tiny_tail_and_no_padding(seconds: float) -> None:
    audio = np.random.default_rng(1).standard_normal(int(seconds * SR)).astype(np.float32)
    bounds = split_at_quiet_points(audio, SR, chunk_seconds=30, search_seconds=5, min_tail_seconds=1.0)
    assert bounds[-1][1] == len(audio)  # nothing added
    assert all(b - a >= SR for a, b in bounds)
    assert all(b - a <= 35 * SR for a, b in bounds)


def test_overlap_and_sequential_give_the_same_result(transcriber: Transcriber, speech40: np.ndarray) -> None:
    a = transcriber.transcribe(speech40, TranscribeOptions(temperatures=(0.0,), overlap=True, max_new_tokens=24))
    b = transcriber.transcribe(speech40, TranscribeOptions(temperatures=(0.0,), overlap=False, max_new_tokens=24))
    assert a == b


def test_streaming_yields_chunks_as_they_finish(transcriber: Transcriber, speech40: np.ndarray) -> None:
    stats = PipelineStats()
    stream = transcriber.transcribe_iter(speech40, TranscribeOptions(temperatures=(0.0,), max_new_tokens=8), stats)
    first = next(stream)
    assert first.index == 0 and stats.attempts == [1]  # the second chunk is not decoded yet
    rest = list(stream)
    assert [r.index for r in rest] == [1] and stats.attempts == [1, 1]


def test_loop_guard_retries_hotter_and_flags_what_it_keeps(transcriber: Transcriber, jfk: np.ndarray) -> None:
    """The random model loops on one token: greedy fails the guard and the decode is retried."""
    (greedy,) = transcriber.transcribe(jfk, TranscribeOptions(temperatures=(0.0,), max_new_tokens=64))
    assert greedy.repetitive and greedy.temperature == 0.0 and greedy.truncated
    stats = PipelineStats()
    (retried,) = transcriber.transcribe(jfk, TranscribeOptions(temperatures=(0.0, 0.5, 1.0), max_new_tokens=64), stats)
    assert stats.attempts[0] > 1 and retried.temperature > 0.0
    # the retries decode again from the kept prompt cache: the prompt was evaluated once
    assert stats.prompt_tokens == stats.prompt_audio_tokens + stats.prompt_text_tokens


def test_token_cap_is_flagged(transcriber: Transcriber, jfk: np.ndarray) -> None:
    (r,) = transcriber.transcribe(jfk, TranscribeOptions(temperatures=(0.0,), max_new_tokens=5))
    assert r.truncated and len(r.tokens) <= 5
    assert TranscribeOptions().token_cap(30.0) == 16 + 360


def test_result_fields(transcriber: Transcriber, jfk: np.ndarray) -> None:
    stats = PipelineStats()
    (r,) = transcriber.transcribe(jfk, TranscribeOptions(temperatures=(0.0,), language="English", max_new_tokens=16), stats)
    assert r.language == "English" and r.start == 0.0 and r.end == pytest.approx(11.0)
    assert 0.0 <= r.no_speech_prob <= 1.0 and r.avg_logprob <= 0.0 and r.compression_ratio >= 0.0
    assert stats.prompt_tokens >= len(r.tokens) and stats.chunks == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"temperatures": ()}, {"temperatures": (-1.0,)}, {"chunk_seconds": 0}, {"search_seconds": 40}, {"top_p": 0}],
)
def test_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TranscribeOptions(**kwargs)  # type: ignore[arg-type]


def test_bad_audio(transcriber: Transcriber) -> None:
    with pytest.raises(ValueError, match="1-D 16 kHz samples"):
        transcriber.transcribe(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="at least 10 ms"):
        transcriber.transcribe(np.zeros(10, np.float32))


MEMORY_PROBE = """
import json, sys
import numpy as np
from qwen_whisper_compat.engine.pipeline import Transcriber
from qwen_whisper_compat.engine.types import TranscribeOptions
minutes = float(sys.argv[2])
rng = np.random.default_rng(0)
audio = (0.1 * rng.standard_normal(int(minutes * 60 * 16000))).astype(np.float32)
audio[:: 16000 * 7] = 0.0
with Transcriber(sys.argv[1]) as t:
    results = t.transcribe(audio, TranscribeOptions(temperatures=(0.0,), max_new_tokens=4))
    bounds = [(round(r.start * 16000), round(r.end * 16000)) for r in results]
# VmHWM: this process's own peak (ru_maxrss would include the pytest parent's peak at fork)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_kib": hwm, "bounds": bounds, "n": len(audio)}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak memory from /proc/self/status")
def test_ten_minutes_transcribe_with_bounded_memory(asr_ckpt: Path, converted: Callable[..., Path]) -> None:
    model = str(converted(asr_ckpt, "fp32", "f32"))
    runs = {}
    for minutes in (2, 10):
        proc = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, model, str(minutes)], check=False, capture_output=True, text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[minutes] = json.loads(proc.stdout.strip().splitlines()[-1])
    ten = runs[10]
    bounds = ten["bounds"]
    assert bounds[0][0] == 0 and bounds[-1][1] == ten["n"] and len(bounds) >= 17
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # every sample covered exactly once
    audio_growth_kib = (10 - 2) * 60 * SR * 4 / 1024
    growth = ten["peak_kib"] - runs[2]["peak_kib"]
    assert growth < 2 * audio_growth_kib + 64 * 1024, f"peak RSS grew {growth / 1024:.0f} MiB"


def test_provider_selection() -> None:
    import onnxruntime

    from qwen_whisper_compat.engine.encoder import select_providers

    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(ValueError, match="onnxruntime-gpu"):
            select_providers("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        select_providers("tpu")


def test_language_codes_and_unsupported_languages(transcriber: Transcriber, jfk: np.ndarray) -> None:
    (r,) = transcriber.transcribe(jfk, TranscribeOptions(language="en", temperatures=(0.0,), max_new_tokens=4))
    assert r.language == "English"
    with pytest.raises(ValueError, match="unsupported language 'Klingon'"):
        transcriber.transcribe(jfk, TranscribeOptions(language="Klingon"))
    with pytest.raises(ValueError, match="unsupported language 'ar'"):  # not in the tiny model's list
        transcriber.transcribe(jfk, TranscribeOptions(language="ar"))


def test_word_timestamps_invariants_across_chunks(
    asr_ckpt: Path, aligner_ckpt: Path, converted: Callable[..., Path], speech40: np.ndarray
) -> None:
    """faster-whisper's monotonic-timestamps idea, on any model: words in order, inside their chunk,
    start <= end, joined words equal the chunk text, last end within the audio."""
    aligner = converted(aligner_ckpt, "fp32", "f32")
    with Transcriber(converted(asr_ckpt, "fp32", "f32"), aligner=aligner) as t:
        opts = TranscribeOptions(word_timestamps=True, temperatures=(0.0,), max_new_tokens=48)
        stats = PipelineStats()
        results = t.transcribe(speech40, opts, stats)
        assert stats.align_seconds > 0
    assert len(results) == 2
    previous_end = 0.0
    for r in results:
        assert r.words is not None and "".join(w.word for w in r.words) == r.text
        if r.words:
            assert (r.start, r.end) == (r.words[0].start, r.words[-1].end)
        for w in r.words:
            assert previous_end <= w.start <= w.end <= len(speech40) / SR
            previous_end = w.end


def test_aligning_in_overlap_gives_the_same_words(
    asr_ckpt: Path, aligner_ckpt: Path, converted: Callable[..., Path], speech40: np.ndarray
) -> None:
    with Transcriber(converted(asr_ckpt, "fp32", "f32"), aligner=converted(aligner_ckpt, "fp32", "f32")) as t:
        opts = TranscribeOptions(word_timestamps=True, temperatures=(0.0,), max_new_tokens=24)
        stats = PipelineStats()
        stream = t.transcribe_iter(speech40, dataclasses.replace(opts, overlap=True), stats)
        first = next(stream)
        assert stats.attempts == [1, 1]  # chunk 0 is handed out only after chunk 1 decoded
        overlapped = [first, *stream]
        sequential = t.transcribe(speech40, dataclasses.replace(opts, overlap=False))
    assert overlapped == sequential and all(r.words for r in sequential)


def test_word_timestamps_need_an_aligner(transcriber: Transcriber, jfk: np.ndarray) -> None:
    with pytest.raises(ValueError, match="needs a forced aligner"):
        transcriber.transcribe(jfk, TranscribeOptions(word_timestamps=True))


@pytest.mark.parametrize("language", [None, "English"])
def test_batched_decoding_equals_one_by_one(
    transcriber: Transcriber, speech40: np.ndarray, language: str | None
) -> None:
    """Chunks decoded together in one llama.cpp batch give the tokens, scores and no-speech probabilities
    of decoding them one by one (without carried text, which the batched mode does not use)."""
    options = TranscribeOptions(
        language=language, temperatures=(0.0,), chunk_seconds=8.0, search_seconds=2.0, carry_previous_text=False,
        max_new_tokens=40,
    )  # fmt: skip
    one_by_one = transcriber.transcribe(speech40, options)
    assert len(one_by_one) >= 4
    batched = list(transcriber.transcribe_batched(speech40, options, batch_size=3))  # a group of 3, then the rest
    assert_same_chunks(one_by_one, batched)


def assert_same_chunks(one_by_one: list[ChunkResult], batched: list[ChunkResult]) -> None:
    """Every field equal (language, times, text, tokens, flags, temperature); the two scores to float noise."""
    assert [r.index for r in batched] == [r.index for r in one_by_one]
    for a, b in zip(one_by_one, batched, strict=True):
        assert dataclasses.replace(b, avg_logprob=a.avg_logprob, no_speech_prob=a.no_speech_prob) == a
        assert a.avg_logprob == pytest.approx(b.avg_logprob, abs=1e-4)
        assert a.no_speech_prob == pytest.approx(b.no_speech_prob, rel=1e-3, abs=1e-9)


def test_batched_decoding_retries_failed_chunks_hotter(transcriber: Transcriber, speech40: np.ndarray) -> None:
    """As one by one: chunks that loop at temperature 0 are decoded again hotter (same seeds), the others not."""
    options = TranscribeOptions(
        temperatures=(0.0, 0.5, 1.0), chunk_seconds=8.0, search_seconds=2.0, carry_previous_text=False,
        max_new_tokens=32,
    )  # fmt: skip
    first, second = PipelineStats(), PipelineStats()
    one_by_one = transcriber.transcribe(speech40, options, first)
    batched = list(transcriber.transcribe_batched(speech40, options, batch_size=3, stats=second))
    attempts = first.attempts
    assert second.attempts == attempts and any(n > 1 for n in attempts)
    assert all((n > 1) == (r.temperature > 0) for n, r in zip(attempts, batched, strict=True))
    assert_same_chunks(one_by_one, batched)
