"""One dynamic encoder graph vs the seed's split layout (static conv frontend per 100-frame chunk in a Python
loop + transformer backend), measured side by side on random weights of a real shape.

    python benchmarks/encoder_layout.py --size 0.6b --seconds 30 120 --repeat 5

Both layouts run the same nodes (the split pair is cut out of the single graph with onnx.utils.Extractor),
so the difference is the layout alone. Peak memory is measured in a fresh process per layout and length.
Writes benchmarks/results/encoder_layout.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from realshape import write_encoder_checkpoint

RESULTS = HERE / "results"


def build(size: str, cache: Path) -> tuple[Path, Path, Path]:
    """fp32 single graph, and the frontend/backend pair cut out of it."""
    from qwen_whisper_compat.convert.checkpoint import Checkpoint
    from qwen_whisper_compat.convert.onnx_encoder import build_encoder_graph
    from qwen_whisper_compat.convert.onnx_graph import save_model

    single, front, back = (cache / f"{size}-{n}.onnx" for n in ("single", "frontend", "backend"))
    if single.exists() and front.exists() and back.exists():
        return single, front, back
    ckpt = Checkpoint(write_encoder_checkpoint(cache / f"encoder-ckpt-{size}", size))
    model = build_encoder_graph(ckpt)
    save_model(model, single)
    # the frontend ends where the sinusoid positions are added (the Add fed by the sliced table)
    sliced = {n.output[0] for n in model.graph.node if n.op_type == "Slice" and "positional_embedding" in n.input}
    cut = next(n.output[0] for n in model.graph.node if n.op_type == "Add" and sliced & set(n.input))
    onnx.utils.extract_model(str(single), str(front), ["input_features"], [cut])
    onnx.utils.extract_model(str(single), str(back), [cut, "input_features"], ["audio_embeds"])
    return single, front, back


class Single:
    def __init__(self, paths: tuple[Path, Path, Path], threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sess = ort.InferenceSession(str(paths[0]), opts, providers=["CPUExecutionProvider"])

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {"input_features": mel})[0]


class Split:
    """The seed's layout: one frontend call per 100-frame chunk, then the backend once."""

    def __init__(self, paths: tuple[Path, Path, Path], threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.front = ort.InferenceSession(str(paths[1]), opts, providers=["CPUExecutionProvider"])
        self.back = ort.InferenceSession(str(paths[2]), opts, providers=["CPUExecutionProvider"])
        self.cut = self.front.get_outputs()[0].name

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        n = mel.shape[1]
        padded = np.zeros((mel.shape[0], -(-n // 100) * 100), np.float32)
        padded[:, :n] = mel
        parts = [self.front.run(None, {"input_features": padded[:, i : i + 100]})[0] for i in range(0, n, 100)]
        return self.back.run(None, {self.cut: np.concatenate(parts), "input_features": mel})[0]


LAYOUTS = {"single": Single, "split": Split}


def child(layout: str, paths: tuple[Path, Path, Path], seconds: float, threads: int) -> None:
    """Run one layout once in this process; print how much its working memory grew the process.

    onnxruntime's arena keeps what a run needed, so the RSS after the run minus the RSS of the loaded,
    warmed-up session is the run's working set (loading itself peaks higher, hence not the peak RSS).
    """
    import psutil

    mel = np.random.default_rng(0).standard_normal((128, int(seconds * 100)), dtype=np.float32)
    runner = LAYOUTS[layout](paths, threads)
    runner(mel[:, :100])
    proc = psutil.Process()
    base = proc.memory_info().rss
    runner(mel)
    grown = proc.memory_info().rss - base
    print(json.dumps({"working_set_mib": grown / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b", "aligner"])
    ap.add_argument("--seconds", type=float, nargs="+", default=[30.0, 120.0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--child", nargs=2, metavar=("LAYOUT", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    cache = RESULTS / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    paths = build(args.size, cache)
    if args.child:
        child(args.child[0], paths, float(args.child[1]), args.threads)
        return

    rows = []
    runners = {name: cls(paths, args.threads) for name, cls in LAYOUTS.items()}
    for seconds in args.seconds:
        mel = np.random.default_rng(1).standard_normal((128, int(seconds * 100)), dtype=np.float32)
        outs = {name: run(mel) for name, run in runners.items()}  # warm-up, and the two must agree
        diff = float(np.abs(outs["single"] - outs["split"]).max() / np.abs(outs["single"]).max())
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(args.repeat):  # interleaved so that machine noise hits both alike
            for name, run in runners.items():
                t0 = time.perf_counter()
                run(mel)
                times[name].append(time.perf_counter() - t0)
        for name in runners:
            mem = subprocess.run(
                [sys.executable, __file__, "--size", args.size, "--threads", str(args.threads),
                 "--child", name, str(seconds)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows.append(
                {
                    "size": args.size,
                    "layout": name,
                    "audio_s": seconds,
                    "median_s": statistics.median(times[name]),
                    "min_s": min(times[name]),
                    "rtf": statistics.median(times[name]) / seconds,
                    "max_rel_diff_vs_single": diff,
                    **json.loads(mem.stdout),
                }
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encoder_layout.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "| size | layout | audio s | median s | RTF | run working set MiB |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['size']} | {r['layout']} | {r['audio_s']:.0f} | {r['median_s']:.3f} | {r['rtf']:.4f} "
            f"| {r['working_set_mib']:.0f} |"
            for r in rows
        ),
    ]
    (RESULTS / "encoder_layout.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
