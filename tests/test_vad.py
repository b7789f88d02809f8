"""The VAD behind faster-whisper's ``vad_filter`` (vendored Silero by default, energy as fallback): regions on
real speech, parity with faster-whisper, options, fallback, chunk mapping."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import re
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

import faster_whisper.vad as fw_vad
import numpy as np
import pytest
from faster_whisper.utils import get_assets_path

from qwen_whisper_compat import vad
from qwen_whisper_compat.audio import load_audio
from qwen_whisper_compat.vad import (
    SILERO_MODEL,
    SileroUnavailableError,
    SileroVad,
    SpeechTimestampsMap,
    VadOptions,
    collect_chunks,
    frame_scores,
    get_speech_timestamps,
    resolve_vad_options,
    shared_silero_vad,
    timestamps_from_probabilities,
)

SR = 16000
#: faster-whisper's own VAD test options (tests/test_transcribe.py::test_vad)
FW_TEST = {"min_silence_duration_ms": 500, "speech_pad_ms": 200}
METHODS = ["silero", "energy"]


def assert_well_formed(regions: list[dict[str, int]], n: int) -> None:
    assert all(set(r) == {"start", "end"} and isinstance(r["start"], int) for r in regions)
    assert all(0 <= r["start"] < r["end"] <= n for r in regions)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(regions))


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * SR)) * 10 ** (dbfs / 20)).astype(np.float32)


def covered(regions: list[dict[str, int]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for r in regions:
        mask[r["start"] : r["end"]] = True
    return mask


def piano_chords(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """Music-like sound: 4-note chords of decaying harmonic tones struck every 0.2-0.6 s (as vad_compare.py)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    scale = 220.0 * 2 ** (np.array([0, 3, 5, 7, 10, 12, 15, 17, 19, 22]) / 12)
    t = np.arange(int(1.2 * SR)) / SR
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.35)
    out = np.zeros(n + t.size)
    pos = 0
    while pos < n:
        for f0 in [*rng.choice(scale, 3, replace=False), rng.choice(scale[:5]) / 2]:
            out[pos : pos + t.size] += envelope * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        pos += int(rng.uniform(0.2, 0.6) * SR)
    out = out[:n]
    return (out * 10 ** (dbfs / 20) / np.sqrt(np.mean(out**2))).astype(np.float32)


@pytest.fixture(scope="module")
def librispeech(shared_audio: Path) -> np.ndarray:
    return load_audio(shared_audio / "librispeech_1995-1837-0001.wav")


# --- speech found --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_jfk_speech_found(jfk: np.ndarray, method: str) -> None:
    regions = get_speech_timestamps(jfk, method=method)
    assert_well_formed(regions, jfk.size)
    assert regions[0]["start"] < 1 * SR
    assert regions[-1]["end"] > 10 * SR
    # faster-whisper's test_vad bounds, with its options
    regions = get_speech_timestamps(jfk, method=method, **FW_TEST)
    assert 0 <= regions[0]["start"] / SR < 1
    assert 10 < regions[-1]["end"] / SR <= 11


def test_silero_is_the_default(jfk: np.ndarray) -> None:
    assert get_speech_timestamps(jfk, **FW_TEST) == get_speech_timestamps(jfk, method="silero", **FW_TEST)
    assert get_speech_timestamps(jfk, **FW_TEST) != get_speech_timestamps(jfk, method="energy", **FW_TEST)


def test_music_is_speech_to_energy_but_not_to_silero() -> None:
    """Why Silero is the default: loud sound that rises and falls like speech fools the energy detector."""
    music = piano_chords(10, -25)
    energy = covered(get_speech_timestamps(music, method="energy", speech_pad_ms=0), music.size).mean()
    silero = covered(get_speech_timestamps(music, method="silero", speech_pad_ms=0), music.size).mean()
    assert energy > 0.8
    assert silero < 0.02


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("gap", ["silence", "noise -30 dBFS"])
def test_two_utterances_three_seconds_apart(jfk: np.ndarray, librispeech: np.ndarray, gap: str, method: str) -> None:
    filler = np.zeros(3 * SR, np.float32) if gap == "silence" else noise(3, -30)
    audio = np.concatenate([jfk, filler, librispeech])
    if gap != "silence":  # the same background under the speech too
        audio = audio + noise(audio.size / SR, -30, seed=1)
    gap_start, gap_end = jfk.size, jfk.size + filler.size
    # defaults: 2 s of silence ends a region, 400 ms padding
    regions = get_speech_timestamps(audio, method=method)
    assert_well_formed(regions, audio.size)
    assert len(regions) == 2
    pad = int(0.4 * SR) + int(0.2 * SR)  # the padding, and Silero hears a word's tail go on into the noise
    assert gap_start - SR < regions[0]["end"] <= gap_start + pad
    assert gap_end - pad <= regions[1]["start"] < gap_end + SR
    assert not covered(regions, audio.size)[gap_start + pad : gap_end - pad].any()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "kind",
    ["digital silence", "dither", "white -30 dBFS", "white -6 dBFS", "pink -20 dBFS", "440 Hz tone", "50 Hz hum"],
)
def test_no_speech_in_steady_sound(kind: str, method: str) -> None:
    t = np.arange(10 * SR) / SR
    rng = np.random.default_rng(0)
    if kind == "digital silence":
        audio = np.zeros(t.size)
    elif kind == "dither":
        audio = rng.standard_normal(t.size) * 1e-5
    elif kind.startswith("white"):
        audio = noise(10, float(kind.split()[1]))
    elif kind.startswith("pink"):
        spectrum = np.fft.rfft(rng.standard_normal(t.size)) / np.sqrt(np.maximum(np.fft.rfftfreq(t.size, 1 / SR), 1))
        audio = np.fft.irfft(spectrum, t.size)
        audio *= 0.1 / np.sqrt(np.mean(audio**2))
    elif kind == "440 Hz tone":
        audio = 0.3 * np.sin(2 * np.pi * 440 * t)
    else:
        audio = 0.3 * np.sin(2 * np.pi * 50 * t) + noise(10, -40)
    audio = audio.astype(np.float32)
    regions = get_speech_timestamps(audio, speech_pad_ms=0, method=method)
    assert sum(r["end"] - r["start"] for r in regions) < 0.05 * SR


@pytest.mark.parametrize("method", METHODS)
def test_empty_audio(method: str) -> None:
    empty = np.zeros(0, np.float32)
    assert get_speech_timestamps(empty, method=method) == []
    assert get_speech_timestamps(empty, VadOptions(min_silence_duration_ms=0), method=method) == []
    assert frame_scores(empty).size == 0
    assert collect_chunks(empty, []).size == 0


def test_frame_scores_one_per_10_ms(jfk: np.ndarray) -> None:
    scores = frame_scores(jfk[:16001])
    assert scores.dtype == np.float32 and scores.size == 101
    assert 0.0 <= scores.min() and scores.max() <= 1.0


def test_other_sampling_rate(shared_audio: Path, jfk: np.ndarray) -> None:
    jfk8 = load_audio(shared_audio / "jfk.flac", sr=8000)
    at16 = [(r["start"] / SR, r["end"] / SR) for r in get_speech_timestamps(jfk, method="energy", **FW_TEST)]
    at8 = [
        (r["start"] / 8000, r["end"] / 8000)
        for r in get_speech_timestamps(jfk8, sampling_rate=8000, method="energy", **FW_TEST)
    ]
    assert len(at8) == len(at16)
    assert np.allclose(at8, at16, atol=0.1)
    with pytest.raises(ValueError, match="16000 Hz"):
        get_speech_timestamps(jfk8, sampling_rate=8000)


@pytest.mark.parametrize("method", METHODS)
def test_agrees_with_faster_whisper_on_clean_speech(shared_audio: Path, method: str) -> None:
    """On clean read speech our regions and faster-whisper's Silero regions cover the same frames."""
    for name in ["jfk.flac", "librispeech_1995-1837-0001.wav", "multilingual.mp3"]:
        audio = load_audio(shared_audio / name)
        ours = covered(get_speech_timestamps(audio, method=method, **FW_TEST), audio.size)
        theirs = covered(fw_vad.get_speech_timestamps(audio, fw_vad.VadOptions(**FW_TEST)), audio.size)
        f1 = 2 * (ours & theirs).sum() / (ours.sum() + theirs.sum())
        assert f1 > (0.98 if method == "silero" else 0.93), name


def test_silero_regions_match_faster_whisper_on_jfk(jfk: np.ndarray) -> None:
    """Our Silero v6.2 against faster-whisper's v6.0: the same regions, boundaries within 0.1 s."""
    for options in [{}, FW_TEST, {"max_speech_duration_s": 3}]:
        ours = get_speech_timestamps(jfk, **options)
        theirs = fw_vad.get_speech_timestamps(jfk, fw_vad.VadOptions(**options))
        assert len(ours) == len(theirs), options
        for a, b in zip(ours, theirs, strict=True):
            assert abs(a["start"] - b["start"]) <= 0.1 * SR and abs(a["end"] - b["end"]) <= 0.1 * SR, options


def test_front_end_is_faster_whispers(jfk: np.ndarray) -> None:
    """Our windows, context and carried state give faster-whisper's probabilities when given its model file.

    All but the last window: faster-whisper's ``SileroVADModel.__call__`` zeroes the last 64 samples of its
    input (``context[-1] = 0`` writes through a view of it), so its last window differs. Hence the copy.
    """
    audio = jfk[: jfk.size // 512 * 512]
    ours = SileroVad(Path(get_assets_path()) / "silero_vad_v6.onnx").probabilities(audio)
    theirs = fw_vad.get_vad_model()(audio.copy()).reshape(-1)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])


@pytest.mark.parametrize(
    "options",
    [
        {},
        FW_TEST,
        {"max_speech_duration_s": 3},
        {"max_speech_duration_s": 5, "min_silence_duration_ms": 100, "speech_pad_ms": 30},
        {"threshold": 0.3, "min_speech_duration_ms": 500, "min_silence_duration_ms": 200},
        {"threshold": 0.7, "neg_threshold": 0.2, "min_silence_duration_ms": 0, "speech_pad_ms": 0},
    ],
)
def test_post_processing_is_faster_whispers(shared_audio: Path, options: dict[str, float]) -> None:
    """Given faster-whisper's own probabilities, our Silero post-processing returns exactly its regions."""
    for name in ["jfk.flac", "multilingual.mp3"]:
        audio = load_audio(shared_audio / name)
        probs = fw_vad.get_vad_model()(np.pad(audio, (0, 512 - audio.size % 512))).reshape(-1)
        ours = timestamps_from_probabilities(probs, VadOptions(**options), audio.size)
        assert ours == fw_vad.get_speech_timestamps(audio, fw_vad.VadOptions(**options)), name


def speech_like_probabilities(n: int, seed: int) -> np.ndarray:
    """Probabilities that wander through and between the thresholds: speech, pauses, hesitations."""
    rng = np.random.default_rng(seed)
    level = np.repeat(rng.choice([0.05, 0.3, 0.42, 0.6, 0.95], size=-(-n // 16), p=[0.4, 0.1, 0.1, 0.1, 0.3]), 16)[:n]
    return np.clip(level + rng.normal(0, 0.08, n), 0, 1).astype(np.float32)


@pytest.mark.parametrize(
    "options",
    [
        FW_TEST,
        {"min_silence_duration_ms": 100, "speech_pad_ms": 0},
        {"max_speech_duration_s": 2, "min_silence_duration_ms": 300, "speech_pad_ms": 30},
        {"max_speech_duration_s": 1, "min_silence_duration_ms": 50, "speech_pad_ms": 0, "min_speech_duration_ms": 200},
        {"threshold": 0.4, "neg_threshold": 0.3, "max_speech_duration_s": 3, "min_silence_duration_ms": 200},
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_post_processing_is_faster_whispers_on_wandering_probabilities(
    options: dict[str, float], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """faster-whisper's own loop given the same probabilities (its model swapped for them) returns our regions
    exactly, through speech split at its maximum, pauses between the thresholds and speech open at the end."""
    num_samples = 512 * 900 - 100
    probs = speech_like_probabilities(num_samples // 512 + 1, seed)  # faster-whisper pads to whole windows
    monkeypatch.setattr(fw_vad, "get_vad_model", lambda: lambda padded: probs[: padded.size // 512])
    theirs = fw_vad.get_speech_timestamps(np.zeros(num_samples, np.float32), fw_vad.VadOptions(**options))
    ours = timestamps_from_probabilities(probs, VadOptions(**options), num_samples)
    assert len(ours) >= 2
    assert ours == theirs


# --- options -----------------------------------------------------------------------------------


def test_options_match_faster_whisper() -> None:
    ours = {f.name: f.default for f in dataclasses.fields(VadOptions)}
    theirs = {f.name: f.default for f in dataclasses.fields(fw_vad.VadOptions)}
    assert ours == theirs


@pytest.mark.parametrize("method", METHODS)
def test_min_silence_splits_at_pauses(jfk: np.ndarray, method: str) -> None:
    merged = get_speech_timestamps(jfk, method=method)  # default 2 s: jfk's pauses (< 1 s) stay in one region
    split = get_speech_timestamps(jfk, method=method, min_silence_duration_ms=300)
    assert len(merged) == 1
    assert len(split) >= 3
    assert covered(split, jfk.size).sum() < covered(merged, jfk.size).sum()


@pytest.mark.parametrize("method", METHODS)
def test_speech_pad_widens_regions_as_specified(jfk: np.ndarray, method: str) -> None:
    bare = get_speech_timestamps(jfk, method=method, min_silence_duration_ms=300, speech_pad_ms=0)
    padded = get_speech_timestamps(jfk, method=method, min_silence_duration_ms=300, speech_pad_ms=400)
    pad = int(0.4 * SR)
    assert len(padded) == len(bare) >= 3
    gaps = [b["start"] - a["end"] for a, b in itertools.pairwise(bare)]
    assert min(gaps) < 2 * pad < max(gaps)  # both rules below are exercised
    assert padded[0]["start"] == max(0, bare[0]["start"] - pad)
    assert padded[-1]["end"] == min(jfk.size, bare[-1]["end"] + pad)
    for i in range(len(bare) - 1):  # each gap gives each side the padding, or half of itself if shorter
        share = min(pad, (bare[i + 1]["start"] - bare[i]["end"]) // 2)
        assert padded[i]["end"] == bare[i]["end"] + share
        assert padded[i + 1]["start"] == bare[i + 1]["start"] - share


@pytest.mark.parametrize("method", METHODS)
def test_max_speech_duration_splits_long_regions(jfk: np.ndarray, method: str) -> None:
    whole = get_speech_timestamps(jfk, method=method)
    pieces = get_speech_timestamps(jfk, method=method, max_speech_duration_s=3)
    assert len(whole) == 1 and whole[0]["end"] - whole[0]["start"] > 10 * SR
    assert_well_formed(pieces, jfk.size)
    assert len(pieces) >= 4
    assert all(p["end"] - p["start"] <= 3 * SR for p in pieces)
    # split, not thrown away: the pieces still hold nearly all of the region
    assert covered(pieces, jfk.size).sum() > 0.9 * covered(whole, jfk.size).sum()


def test_min_speech_duration_drops_short_sounds() -> None:
    audio = np.zeros(4 * SR, np.float32)
    audio[2 * SR : 2 * SR + 1600] = 0.1 * np.sin(2 * np.pi * 1000 * np.arange(1600) / SR)  # a 100 ms beep
    assert len(get_speech_timestamps(audio, method="energy")) == 1
    assert get_speech_timestamps(audio, method="energy", min_speech_duration_ms=250) == []


@pytest.mark.parametrize("method", METHODS)
def test_min_speech_duration_drops_short_regions(jfk: np.ndarray, method: str) -> None:
    bare = get_speech_timestamps(jfk, method=method, min_silence_duration_ms=100, speech_pad_ms=0)
    lengths = sorted(r["end"] - r["start"] for r in bare)
    assert len(lengths) >= 3
    limit_ms = (lengths[0] + lengths[1]) / 2 / SR * 1000  # between the two shortest
    kept = get_speech_timestamps(
        jfk, method=method, min_silence_duration_ms=100, speech_pad_ms=0, min_speech_duration_ms=int(limit_ms)
    )
    assert kept == [r for r in bare if r["end"] - r["start"] > int(limit_ms) * SR / 1000]
    assert len(kept) == len(bare) - 1


@pytest.mark.parametrize("method", METHODS)
def test_higher_threshold_keeps_less(jfk: np.ndarray, method: str) -> None:
    def kept(threshold: float) -> int:
        regions = get_speech_timestamps(
            jfk, method=method, threshold=threshold, min_silence_duration_ms=0, speech_pad_ms=0
        )
        return int(covered(regions, jfk.size).sum())

    assert kept(0.95) < kept(0.5) < kept(0.1)


def test_options_and_keywords(jfk: np.ndarray) -> None:
    options = VadOptions(min_silence_duration_ms=100)
    given = get_speech_timestamps(jfk, options)
    assert given != get_speech_timestamps(jfk)  # the options matter on this audio, so the alias is really checked
    assert get_speech_timestamps(jfk, vad_options=options) == given
    assert resolve_vad_options({"speech_pad_ms": 30}) == VadOptions(speech_pad_ms=30)
    assert resolve_vad_options(None) == VadOptions()
    assert VadOptions(threshold=0.5).effective_neg_threshold == pytest.approx(0.35)
    assert VadOptions(threshold=0.1).effective_neg_threshold == pytest.approx(0.01)


@pytest.mark.parametrize("method", METHODS)
def test_keywords_override_options(jfk: np.ndarray, method: str) -> None:
    base = VadOptions(min_silence_duration_ms=300, speech_pad_ms=0)
    assert get_speech_timestamps(jfk, base, method=method, speech_pad_ms=200) == get_speech_timestamps(
        jfk, dataclasses.replace(base, speech_pad_ms=200), method=method
    )


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"threshold": 1.5}, ValueError),
        ({"threshold": 0.3, "neg_threshold": 0.5}, ValueError),
        ({"min_silence_duration_ms": -1}, ValueError),
        ({"max_speech_duration_s": 0}, ValueError),
        ({"min_silence_ms": 100}, TypeError),
    ],
)
def test_bad_options(kwargs: dict[str, float], error: type[Exception]) -> None:
    with pytest.raises(error):
        get_speech_timestamps(np.zeros(SR, np.float32), **kwargs)
    with pytest.raises(error):
        resolve_vad_options(kwargs)


def test_bad_audio() -> None:
    with pytest.raises(ValueError, match="1-D"):
        get_speech_timestamps(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError, match="float"):
        get_speech_timestamps(np.zeros(SR, np.int16))
    with pytest.raises(ValueError, match="sampling_rate"):
        get_speech_timestamps(np.zeros(SR, np.float32), sampling_rate=0)
    with pytest.raises(ValueError, match="expected one of: silero, energy"):
        get_speech_timestamps(np.zeros(SR, np.float32), method="webrtc")  # type: ignore[arg-type]


# --- the vendored Silero model, its session and the fallback -------------------------------------


def test_vendored_model_matches_notice() -> None:
    folder = resources.files("qwen_whisper_compat") / "assets" / "silero_vad"
    notice = (folder / "NOTICE").read_text("utf-8")
    digest = hashlib.sha256((resources.files("qwen_whisper_compat") / SILERO_MODEL).read_bytes()).hexdigest()
    assert re.search(rf"sha256[^\n]*{digest}", notice)
    assert "silero-vad 6.2.3" in notice
    assert "MIT License" in (folder / "LICENSE").read_text("utf-8")


def test_import_does_not_load_onnxruntime() -> None:
    code = "import sys, qwen_whisper_compat.vad; print(sorted(m for m in sys.modules if m.startswith('onnxruntime')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_session_shared_by_threads(jfk: np.ndarray) -> None:
    assert shared_silero_vad() is shared_silero_vad()
    expected = get_speech_timestamps(jfk, **FW_TEST)
    results: list[list[dict[str, int]]] = []

    def work() -> None:
        results.append(get_speech_timestamps(jfk, **FW_TEST))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_probabilities_one_per_window(jfk: np.ndarray) -> None:
    probs = shared_silero_vad().probabilities(jfk[:5000])
    assert probs.dtype == np.float32 and probs.shape == (10,)
    assert 0.0 <= probs.min() and probs.max() <= 1.0
    # blocks of windows carry the model's state: the same as all windows in one call
    whole = shared_silero_vad().probabilities(jfk)
    np.testing.assert_array_equal(whole[:9], shared_silero_vad().probabilities(jfk[: 9 * 512]))


def test_falls_back_to_energy_with_one_warning(
    jfk: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "silero.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(SileroUnavailableError, match="cannot load"):
        SileroVad(broken)
    monkeypatch.setattr(vad, "_SHARED", vad.silero.SharedSilero(broken))
    with caplog.at_level(logging.WARNING, logger="qwen_whisper_compat.vad"):
        first = get_speech_timestamps(jfk, **FW_TEST)
        second = get_speech_timestamps(jfk, **FW_TEST)
    assert first == second == get_speech_timestamps(jfk, method="energy", **FW_TEST)
    assert len(caplog.records) == 1 and "energy VAD instead" in caplog.records[0].getMessage()
    with pytest.raises(SileroUnavailableError):
        shared_silero_vad()


def test_missing_onnxruntime_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with pytest.raises(SileroUnavailableError, match="needs onnxruntime"):
        SileroVad()


# --- collect_chunks and the time map -----------------------------------------------------------


def test_collect_chunks_and_time_map_round_trip(jfk: np.ndarray) -> None:
    chunks = get_speech_timestamps(jfk, min_silence_duration_ms=300, speech_pad_ms=50)
    assert len(chunks) >= 3
    speech = collect_chunks(jfk, chunks)
    assert speech.size == sum(c["end"] - c["start"] for c in chunks)
    mapping = SpeechTimestampsMap(chunks, SR)
    offset = 0
    for i, c in enumerate(chunks):
        length = c["end"] - c["start"]
        assert np.array_equal(speech[offset : offset + length], jfk[c["start"] : c["end"]])
        for fraction in (0.0, 0.37, 0.9):
            concatenated = (offset + int(fraction * length)) / SR
            original = (c["start"] + int(fraction * length)) / SR
            assert mapping.get_original_time(concatenated) == pytest.approx(original, abs=0.006)
            assert mapping.get_chunk_index(concatenated) == i
        # at a boundary, an end belongs to the chunk before it and a start to the chunk after it
        end = (offset + length) / SR
        assert mapping.get_original_time(end, is_end=True) == pytest.approx(c["end"] / SR, abs=0.006)
        if i + 1 < len(chunks):
            assert mapping.get_original_time(end) == pytest.approx(chunks[i + 1]["start"] / SR, abs=0.006)
        offset += length


def test_time_map_matches_faster_whisper(jfk: np.ndarray) -> None:
    chunks = get_speech_timestamps(jfk, min_silence_duration_ms=300, speech_pad_ms=50)
    ours, theirs = SpeechTimestampsMap(chunks, SR), fw_vad.SpeechTimestampsMap(chunks, SR)
    total = sum(c["end"] - c["start"] for c in chunks) / SR
    # off the boundaries, where faster-whisper's int() truncation can pick the chunk before
    for t in [*np.linspace(0, total + 0.5, 97), *((e + 1.5) / SR for e in ours.chunk_end_sample)]:
        for is_end in (False, True):
            assert ours.get_original_time(float(t), is_end=is_end) == theirs.get_original_time(float(t), is_end=is_end)


def test_no_chunks() -> None:
    audio = noise(1, -30)
    assert collect_chunks(audio, []).size == 0
    assert SpeechTimestampsMap([], SR).get_original_time(1.234) == 1.23


def test_bad_chunks() -> None:
    audio = np.zeros(SR, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        collect_chunks(audio, [{"start": 0, "end": 800}, {"start": 400, "end": 900}])
    with pytest.raises(ValueError, match="after the audio"):
        collect_chunks(audio, [{"start": 0, "end": 2 * SR}])
    with pytest.raises(ValueError, match="overlaps"):
        SpeechTimestampsMap([{"start": 500, "end": 100}], SR)
