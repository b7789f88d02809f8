"""The encoder's convolution stem under int8: where the int8 encoder's time goes, and what quantizing the
stem's three Conv layers (onnxruntime's dynamic ConvInteger) changes, side by side.

    .venv/bin/python benchmarks/encoder_stem.py --size 0.6b --repeat 5

Variants, all made from the same fp32 graph our converter writes (random weights of the real shape):

* fp32: the converter's fp32 encoder;
* int8 (MatMul): the shipped int8 encoder, MatMul weights per channel, the stem left in fp32;
* int8 (MatMul + Conv): the same, with the three Conv layers dynamically quantized too (ConvInteger).

Each variant encodes the same 30 s of speech in a fresh process with the shipped session settings
(``encoder_settings.run``), runs alternated, medians; outputs are compared with fp32 (cosine, worst row). One
profiled run of each int8 variant splits its time by operator. Writes benchmarks/results/encoder_stem_<size>.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from encoder_settings import SECONDS, run
from harness import CACHE, alternated_runs, medians, prepare_one, run_child, speech, write_results
from int8_weights import cosine

VARIANTS = ("fp32", "int8 (MatMul)", "int8 (MatMul + Conv)")
PROFILE = "profile"


def build(size: str) -> dict[str, Path]:
    from qwen_whisper_compat.convert.quantize import to_int8

    fp32 = next(prepare_one(size, "fp32", "f16").glob("encoder*.onnx"))
    int8 = next(prepare_one(size, "int8", "q8_0").glob("encoder*.onnx"))
    conv = CACHE / f"encoder-stem-{size}" / "encoder.int8-conv.onnx"
    if not conv.is_file():
        conv.parent.mkdir(parents=True, exist_ok=True)
        tmp = conv.with_suffix(".tmp")
        to_int8(fp32, tmp, op_types=("MatMul", "Conv"))  # the shipped int8 recipe, Conv added
        tmp.rename(conv)
    return dict(zip(VARIANTS, (fp32, int8, conv), strict=True))


def op_shares(path: str) -> dict[str, float]:
    """Seconds per operator type of one 30 s encode (after a short warm-up), from onnxruntime's profiler."""
    import onnxruntime as ort

    from qwen_whisper_compat.engine.mel import log_mel_spectrogram

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    opts.enable_profiling = True
    session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    mel = np.ascontiguousarray(log_mel_spectrogram(speech(SECONDS)), dtype=np.float32)
    session.run(None, {name: mel[:, :800]})  # warm-up
    session.run(None, {name: mel})
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    last = max((e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"), key=lambda e: e["ts"])
    totals: collections.Counter[str] = collections.Counter()
    for e in events:
        if (
            e.get("cat") == "Node"
            and e["name"].endswith("_kernel_time")
            and last["ts"] <= e["ts"] <= last["ts"] + last["dur"]
        ):
            totals[e["args"]["op_name"]] += e["dur"]
    return {op: us / 1e6 for op, us in totals.most_common()}


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # PATH SETTING OUT, or PATH profile -
        path, setting, out = args.child
        print(json.dumps(op_shares(path) if setting == PROFILE else run(path, setting, out)))
        return
    paths = build(args.size)
    work = CACHE / f"encoder-stem-{args.size}"
    runs = alternated_runs(VARIANTS, args.repeat, lambda name: child(
        [str(paths[name]), "default (2 threads)", str(work / f"out-{VARIANTS.index(name)}.npy")]))  # fmt: skip
    reference = np.load(work / "out-0.npy")
    rows = []
    for i, name in enumerate(VARIANTS):
        embeds = np.load(work / f"out-{i}.npy")
        shares: dict[str, float] = child([str(paths[name]), PROFILE, "-"]) if i else {}
        stem = sum(v for op, v in shares.items() if op.startswith("Conv"))
        row = {
            "variant": name,
            **medians(runs[name]),
            "cosine_vs_fp32": cosine(embeds, reference),
            "worst_row_cosine_vs_fp32": min(cosine(a, b) for a, b in zip(embeds, reference, strict=True)),
            "stem_share": stem / sum(shares.values()) if shares else None,
            "top_ops_s": dict(list(shares.items())[:5]),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    lines = [
        (
            f"| {args.size} encoder | s per audio s | encode s (30 s) | Conv / ConvInteger share of op time "
            "| cosine vs fp32 | worst row | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['variant']} | {r['s_per_audio_s']:.4f} | {r['encode_s']:.2f} "
            f"| {'' if r['stem_share'] is None else format(r['stem_share'], '.0%')} | {r['cosine_vs_fp32']:.5f} "
            f"| {r['worst_row_cosine_vs_fp32']:.5f} | {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
    ]
    meta = {"size": args.size, "seconds": SECONDS, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d")}
    write_results(f"encoder_stem_{args.size.replace('.', '')}", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
