"""The benchmarks' shared helpers: the speech they transcribe, the random-weight models of the real shapes
(written and converted once, cached under ``results/cache``), the engine options that force a token count,
fresh child processes (each with its own peak RSS), the alternated run order and medians, and the results
files (``results/NAME.json`` and ``results/NAME.md``).

Each benchmark imports what it needs from here; ``engine_speed.py`` is one of them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
CACHE = RESULTS / "cache"
AUDIO = HERE.parent / "tests" / "data" / "audio"
#: The precision pairs measured: decoder/encoder name -> (encoder, decoder) precisions.
CONFIGS = {"f16/fp32": ("fp32", "f16"), "q8_0/int8": ("int8", "q8_0"), "q4_k/int8": ("int8", "q4_k")}
#: Tokens generated per audio second, forced (end of sequence ignored): random weights decide no length.
TOKENS_PER_SECOND = 4.0
T = TypeVar("T")
R = TypeVar("R")


def speech(seconds: float) -> np.ndarray:
    """``seconds`` of real speech: the shared clips back to back."""
    from qwen_whisper_compat.audio import load_audio

    names = ["jfk.flac", "librispeech_1995-1837-0001.wav", "aishell_BAC009S0724W0121.wav", "multilingual.mp3"]
    audio = np.concatenate([load_audio(AUDIO / n) for n in names])
    return np.tile(audio, int(np.ceil(seconds * 16000 / len(audio))))[: int(seconds * 16000)]


def options(overlap: bool = True, chunk_seconds: float = 30.0):  # type: ignore[no-untyped-def]
    from qwen_whisper_compat.engine.types import TranscribeOptions

    return TranscribeOptions(
        temperatures=(0.0,), ignore_eos=True, tokens_per_second=TOKENS_PER_SECOND, token_cap_base=0,
        overlap=overlap, chunk_seconds=chunk_seconds, search_seconds=min(5.0, chunk_seconds / 4),
    )  # fmt: skip


def prepare(size: str) -> tuple[Path, dict[str, Path]]:
    folders = {name: prepare_one(size, encoder, decoder) for name, (encoder, decoder) in CONFIGS.items()}
    return checkpoint(size), folders


def checkpoint(size: str) -> Path:
    """The random checkpoint of the real ``size`` shape (written once, cached)."""
    from realshape import write_checkpoint

    return write_checkpoint(CACHE / f"ckpt-{size}", size, shards=1 if size == "0.6b" else 2)


def prepare_one(size: str, encoder: str, decoder: str) -> Path:
    """The model folder of one precision pair, converted from :func:`checkpoint` once and cached."""
    from qwen_whisper_compat.convert import convert_checkpoint

    out = CACHE / f"model-{size}-{decoder}-{encoder}"
    if not (out / "manifest.json").is_file():
        t = time.perf_counter()
        convert_checkpoint(checkpoint(size), out, encoder=encoder, decoder=decoder, overwrite=True)
        print(f"converted {size} {decoder}/{encoder} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return out


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Unlike ``ru_maxrss``, which a child inherits from
    its parent's peak at fork, the high-water mark belongs to the process's own address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def forced_tokens_env(rate: float = TOKENS_PER_SECOND) -> dict[str, str]:
    """This process's environment for a child (a command, a child process, Ray workers) whose every offline
    decode must decode exactly ``rate`` tokens per audio second, end-of-sequence ignored: ``forced_decode/``'s
    ``sitecustomize`` first on ``PYTHONPATH``, which wraps the engine's span decoder at start-up."""
    path = [str(Path(__file__).resolve().parent / "forced_decode"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p),
            "QWEN_WHISPER_BENCH_TOKENS_PER_SECOND": str(rate)}  # fmt: skip


def run_child(script: str, args: list[str], env: dict[str, str] | None = None, python: str | None = None) -> Any:
    """``python SCRIPT --child ARGS`` in a fresh process (its own peak RSS); the JSON of its last stdout line.
    ``python`` is this interpreter unless named (another venv's)."""
    proc = subprocess.run([python or sys.executable, script, "--child", *args], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alternated_runs(names: Sequence[T], repeat: int, run: Callable[[T], R]) -> dict[T, list[R]]:
    """``run(name)`` for every one of ``names``, ``repeat`` times over, each pass starting one later so that
    machine noise hits all alike; the results by name, in run order."""
    runs: dict[T, list[R]] = {name: [] for name in names}
    for r in range(repeat):
        k = r % len(names)
        for name in [*names[k:], *names[:k]]:
            runs[name].append(run(name))
    return runs


def medians(runs: Sequence[dict[str, Any]], keys: Iterable[str] | None = None) -> dict[str, float]:
    """The median over ``runs`` of each of ``keys`` (default: every key of the first run)."""
    return {k: statistics.median(float(m[k]) for m in runs) for k in (runs[0] if keys is None else keys)}


def write_results(name: str, meta: dict[str, Any], rows: list[dict[str, Any]], table: str) -> None:
    """``results/NAME.json`` (meta and rows) and ``results/NAME.md`` (the markdown table); the table on stdout."""
    table = table.rstrip("\n")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (RESULTS / f"{name}.md").write_text(table + "\n")
    print(table)
