"""Start-up of the standalone program against the venv install: ``--help`` and a 10 s transcription, cold
(page cache dropped before the run) and warm (the same command again at once).

    .venv/bin/python benchmarks/bundle_start.py --size tiny --repeat 5
    .venv/bin/python benchmarks/bundle_start.py --size 0.6b --repeat 3

Three programs run the same command line, as a subtitle editor runs ``whisper``: the venv's
``qwen-whisper`` console script, the one-folder bundle and the single-file bundle (``dist/``; built with
``packaging/build.py`` first when missing). Model names resolve through a mirror hub to random checkpoints
(``tiny``: the test suite's tiny models; ``0.6b``: the real Qwen3-ASR-0.6B and aligner shapes,
``realshape.py``), converted once into a model cache all three share, so every run loads the same files and
decodes the same tokens (their subtitles are compared byte for byte). The runs alternate between the
programs; each figure is a median. Cold runs need root (``/proc/sys/vm/drop_caches``); without it only warm
runs are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
DROP_CACHES = Path("/proc/sys/vm/drop_caches")
SECONDS = 10.0


def checkpoints(size: str) -> dict[str, Path]:
    """The mirror hub's repos: the ASR model and its aligner of ``size``, written once under the cache."""
    if size == "tiny":
        import tiny_models

        def tiny(variant: str, seed: int) -> Path:
            folder = CACHE / f"tiny-{variant}-{seed}"
            if not (folder / "config.json").is_file():
                tiny_models.build_checkpoint(folder, variant, "bf16", seed)
            return folder

        return {"Qwen3-ASR-0.6B": tiny("asr", 0), "Qwen3-ForcedAligner-0.6B": tiny("aligner", 2)}
    from realshape import write_checkpoint

    return {
        "Qwen3-ASR-0.6B": write_checkpoint(CACHE / "ckpt-0.6b", "0.6b"),
        "Qwen3-ForcedAligner-0.6B": write_checkpoint(CACHE / "ckpt-aligner", "aligner"),
    }


def mirror(size: str) -> Path:
    folder = CACHE / f"bundle-mirror-{size}" / "Qwen"
    folder.mkdir(parents=True, exist_ok=True)
    for repo, ckpt in checkpoints(size).items():
        if not (folder / repo).exists():
            (folder / repo).symlink_to(ckpt, target_is_directory=True)
    return folder.parent


def clip(folder: Path) -> Path:
    """10 s of real speech (jfk.flac) as a 16 kHz mono wav, as Subtitle Edit hands it to whisper."""
    from qwen_whisper_compat.audio import load_audio

    audio = load_audio(ROOT / "tests" / "data" / "audio" / "jfk.flac")[: int(SECONDS * 16000)]
    path = folder / "clip.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def can_drop_caches() -> bool:
    return os.access(DROP_CACHES, os.W_OK)


def drop_caches() -> None:
    os.sync()
    DROP_CACHES.write_text("3\n")


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{command} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["tiny", "0.6b"], default="tiny")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    dist = args.dist.resolve()
    if not (dist / "build-info.json").is_file():
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--dist", str(dist)], check=True)
    info = json.loads((dist / "build-info.json").read_text(encoding="utf-8"))

    work = CACHE / f"bundle-work-{args.size}"
    work.mkdir(parents=True, exist_ok=True)
    models = {
        "QWEN_WHISPER_HUB_MIRROR": str(mirror(args.size)),
        "QWEN_WHISPER_CACHE": str(CACHE / f"bundle-models-{args.size}"),
    }
    se = {"PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", **models, **se}
    programs = {
        "venv": ([str(Path(sys.executable).parent / "qwen-whisper")], {**os.environ, **models, **se}),
        "onedir": ([str(dist / "qwen-whisper" / "qwen-whisper")], bare),
        "onefile": ([str(dist / "onefile" / "qwen-whisper")], bare),
    }
    audio = clip(work)
    jobs = {
        "--help": ["--help"],
        "10 s transcription": ["--language", "en", "--model", "tiny", "--output_format", "srt", "--output_dir"],
    }
    # convert once (through the venv), then check that every program writes the same subtitles
    outputs = {}
    for name, (command, env) in programs.items():
        out = work / f"out-{name}"
        timed([*command, *jobs["10 s transcription"], str(out), str(audio)], env, work)
        outputs[name] = (out / "clip.srt").read_bytes()
    assert len(set(outputs.values())) == 1, "the three programs wrote different subtitles"

    cold = can_drop_caches()
    if not cold:
        print("not root: /proc/sys/vm/drop_caches is not writable, only warm runs are measured", file=sys.stderr)
    times: dict[tuple[str, str, str], list[float]] = {}
    names = list(programs)
    for r in range(args.repeat):
        for job, job_args in jobs.items():
            for name in names[r % 3 :] + names[: r % 3]:  # rotate the order
                command, env = programs[name]
                full = [*command, *job_args] + ([str(work / f"out-{name}"), str(audio)] if job != "--help" else [])
                for state in ("cold", "warm") if cold else ("warm",):
                    if state == "cold":
                        drop_caches()
                    seconds, _ = timed(full, env, work)
                    times.setdefault((job, name, state), []).append(seconds)
    rows = [
        {"job": job, "program": name, "state": state, "median_s": round(statistics.median(v), 3),
         "min_s": round(min(v), 3), "runs": len(v)}
        for (job, name, state), v in times.items()
    ]  # fmt: skip
    rows.sort(key=lambda row: (list(jobs).index(str(row["job"])), str(row["state"]), names.index(str(row["program"]))))
    result = {
        "size": args.size, "seconds": SECONDS, "repeat": args.repeat, "build": info, "rows": rows,
        "machine": f"{os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bundle_start_{args.size.replace('.', '')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    venv = {(row["job"], row["state"]): row["median_s"] for row in rows if row["program"] == "venv"}
    sizes = f"onedir {info['onedir_bytes'] / 2**20:.0f} MiB, onefile {info['onefile_bytes'] / 2**20:.0f} MiB"
    lines = [
        f"model: {args.size}; {sizes}, built in {info['build_seconds']} s",
        "",
        "| job | state | program | median s | min s | vs venv |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = float(str(row["median_s"])) / float(str(venv[(row["job"], row["state"])]))
        lines.append(f"| {row['job']} | {row['state']} | {row['program']} | {row['median_s']:.2f} | "
                     f"{row['min_s']:.2f} | {ratio:.2f}x |")  # fmt: skip
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
