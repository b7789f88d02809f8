"""A corpus through ``qwen-whisper`` and through ``qwen-whisper-batch``, side by side, on the random-weight
0.6B shape (q8_0 decoder, int8 encoder: the default precision).

    python benchmarks/batch_corpus.py --files 16 --seconds 15

The corpus is ``--files`` WAV files of ``--seconds`` of real speech each (the clips of tests/data/audio back
to back, each file starting at a different place). Every side runs as a fresh command, as a user runs it,
so its wall time includes loading the model(s) and, for the batch command, starting Ray:

* ``qwen-whisper`` with every file on one command line (one model load), 2 threads;
* ``qwen-whisper-batch`` with 1 worker of 2 threads;
* ``qwen-whisper-batch`` with as many workers as the machine allows (its CPUs over 1 thread);
* ``qwen-whisper-batch`` on a simulated two-node cluster (``ray.cluster_utils.Cluster``, the machine's CPUs
  split between two raylets), to show that the work spreads over nodes.

Every side decodes exactly 4 tokens per audio second (``harness.forced_tokens_env``, end of
sequence ignored) with the temperature fallback off, so all decode the same number of tokens. Segments are
timed without the aligner (the model folder has none), as this measures the batch layer, not the engine.
Writes benchmarks/results/batch_corpus.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
CACHE = RESULTS / "cache"
TOKENS_PER_SECOND = 4
#: The same decoding options on every side: one temperature, no fallback, so the forced count is the count.
DECODING = ["--temperature_increment_on_fallback", "None", "--logprob_threshold", "None",
            "--compression_ratio_threshold", "None", "--language", "en", "-f", "srt", "--verbose", "False"]  # fmt: skip


def model_folder() -> Path:
    from realshape import write_checkpoint

    from qwen_whisper_compat.convert import convert_checkpoint

    out = CACHE / "model-0.6b-q8_0-int8"
    if not (out / "manifest.json").is_file():
        ckpt = write_checkpoint(CACHE / "ckpt-0.6b", "0.6b")
        t = time.perf_counter()
        convert_checkpoint(ckpt, out, encoder="int8", decoder="q8_0", overwrite=True)
        print(f"converted 0.6b q8_0/int8 in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return out


def write_corpus(folder: Path, files: int, seconds: float) -> list[Path]:
    from harness import speech

    audio = speech(files * seconds + 7.0)
    paths = []
    for i in range(files):
        start = int((i * seconds + (i % 7)) * 16000)
        piece = np.clip(audio[start:start + int(seconds * 16000)], -1, 1)
        path = folder / f"part{i % 4}" / f"talk{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((piece * 32767).astype("<i2").tobytes())
        paths.append(path)
    return paths


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def manifest_nodes(out: Path) -> int:
    return len({r["node"] for r in manifest(out)})


def manifest(out: Path) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(r["status"] == "done" for r in rows), rows
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs the batch command may use")
    args = parser.parse_args()

    folder = model_folder()
    work = Path(tempfile.mkdtemp(prefix="batch-corpus-"))
    from harness import forced_tokens_env

    env = forced_tokens_env(TOKENS_PER_SECOND)
    try:
        corpus = work / "corpus"
        paths = write_corpus(corpus, args.files, args.seconds)
        audio_s = args.files * args.seconds
        model = ["--model", str(folder), *DECODING]
        bin_dir = Path(sys.executable).parent
        sides: list[dict[str, object]] = []

        def record(name: str, wall: float, workers: int, nodes: int, out: str = "cli") -> None:
            row = {"side": name, "workers": workers, "nodes": nodes, "wall_s": wall, "out": out,
                   "files_per_min": args.files / wall * 60, "audio_s_per_s": audio_s / wall}  # fmt: skip
            sides.append(row)
            print(row, file=sys.stderr)

        wall = timed([str(bin_dir / "qwen-whisper"), *map(str, paths), "--threads", "2", "-o", str(work / "cli"),
                      *model], env)  # fmt: skip
        record("qwen-whisper (one command, all files)", wall, 1, 1)
        batch = [sys.executable, "-m", "qwen_whisper_compat.batch", str(corpus), *model]
        for workers, threads in ((1, 2), (args.cpus, 1)):
            out = work / f"batch-{workers}x{threads}"
            wall = timed([*batch, "-o", str(out), "--workers", str(workers), "--threads-per-worker", str(threads)],
                         env)  # fmt: skip
            record(f"qwen-whisper-batch, {workers} worker(s) x {threads} thread(s)", wall, workers, manifest_nodes(out),
                   out.name)  # fmt: skip
        wall, nodes = two_nodes(batch, work / "batch-2-nodes", env, args.cpus)
        record(f"qwen-whisper-batch, simulated 2 nodes x {args.cpus // 2} CPU(s), 1 thread each", wall, args.cpus,
               nodes, "batch-2-nodes")  # fmt: skip
        for row in sides[1:]:  # subtitles equal to qwen-whisper's (threads and OMP_NUM_THREADS may flip bits)
            out = work / str(row.pop("out"))
            # seconds the workers spent on files; the rest of the wall time is Ray, the model loads and idling
            row["busy_s_per_worker"] = sum(float(r["seconds"]) for r in manifest(out)) / int(row["workers"])  # type: ignore[arg-type]
            row["same_srt_as_cli"] = sum(
                (out / p.relative_to(corpus).with_suffix(".srt")).read_bytes() == (work / "cli" / f"{p.stem}.srt").read_bytes()
                for p in paths
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = float(sides[0]["wall_s"])  # type: ignore[arg-type]
    sides[0].pop("out")
    for row in sides:
        row["speedup"] = base / float(row["wall_s"])  # type: ignore[arg-type]
    meta = {"size": "0.6b", "precision": "q8_0/int8", "files": args.files, "seconds_per_file": args.seconds,
            "cpus": args.cpus, "tokens_per_second": TOKENS_PER_SECOND}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batch_corpus.json").write_text(json.dumps({"meta": meta, "rows": sides}, indent=2) + "\n")
    lines = [
        (f"0.6B shape, q8_0/int8, {args.files} files x {args.seconds:.0f} s of speech, {args.cpus} CPUs, "
         f"{TOKENS_PER_SECOND} tokens per audio second forced; wall time of the whole command (model loads and "
         "Ray start included)."),
        "",
        ("| side | workers | nodes used | wall s | busy s per worker | files/min | audio s/s | vs qwen-whisper "
         "| srt as qwen-whisper's |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sides:
        same = f"{r['same_srt_as_cli']}/{args.files}" if "same_srt_as_cli" in r else "-"
        busy = f"{r['busy_s_per_worker']:.1f}" if "busy_s_per_worker" in r else "-"
        lines.append(
            f"| {r['side']} | {r['workers']} | {r['nodes']} | {r['wall_s']:.1f} | {busy} | {r['files_per_min']:.1f} | "
            f"{r['audio_s_per_s']:.2f} | {r['speedup']:.2f}x | {same} |"
        )
    (RESULTS / "batch_corpus.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def two_nodes(batch: list[str], out: Path, env: dict[str, str], cpus: int) -> tuple[float, int]:
    """The batch command against a cluster of two raylets on this machine, ``cpus // 2`` CPUs each."""
    from ray.cluster_utils import Cluster

    half = max(1, cpus // 2)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": half, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=half)
        cluster.wait_for_nodes()
        wall = timed([*batch, "-o", str(out), "--address", cluster.address, "--threads-per-worker", "1"], env)
        return wall, manifest_nodes(out)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
