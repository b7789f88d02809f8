"""onnxruntime session settings for the audio encoder on a small CPU: threads, spinning, graph optimization
level and the execution mode, side by side on the int8 (and fp32) encoder of the real 0.6B shape.

    .venv/bin/python benchmarks/encoder_settings.py --size 0.6b --repeat 5

Each setting is one session in a fresh process, encoding the same 30 s of speech (one pipeline chunk, the
group of whole 8 s windows ``AudioEncoder`` feeds it) after a warm-up; runs alternate between the settings;
medians. The outputs are compared with the default setting's (max abs difference), so a setting that
changes the numbers shows it. Writes benchmarks/results/encoder_settings_<size>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import CACHE, alternated_runs, medians, peak_rss_mib, prepare_one, run_child, speech, write_results

#: name -> (intra-op threads, session config entries, graph optimization level, sequential execution)
SETTINGS: dict[str, tuple[int, dict[str, str], str, bool]] = {
    "default (2 threads)": (2, {}, "ORT_ENABLE_ALL", True),
    "1 thread": (1, {}, "ORT_ENABLE_ALL", True),
    "2 threads, no spinning": (2, {"session.intra_op.allow_spinning": "0"}, "ORT_ENABLE_ALL", True),
    "2 threads, extended optimizations": (2, {}, "ORT_ENABLE_EXTENDED", True),
    "2 threads, parallel execution": (2, {}, "ORT_ENABLE_ALL", False),
}
SECONDS = 30.0


def run(path: str, setting: str, out: str) -> dict[str, float]:
    import onnxruntime as ort

    from qwen_whisper_compat.engine.mel import log_mel_spectrogram

    threads, entries, level, sequential = SETTINGS[setting]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    for key, value in entries.items():
        opts.add_session_config_entry(key, value)
    start = time.perf_counter()
    session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - start
    name = session.get_inputs()[0].name
    mel = np.ascontiguousarray(log_mel_spectrogram(speech(SECONDS)), dtype=np.float32)
    session.run(None, {name: mel[:, :800]})  # warm-up
    start = time.perf_counter()
    (embeds,) = session.run(None, {name: mel})
    seconds = time.perf_counter() - start
    np.save(out, embeds)
    return {"encode_s": seconds, "s_per_audio_s": seconds / SECONDS, "load_s": load, "peak_rss_mib": peak_rss_mib()}


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b"])
    ap.add_argument("--encoders", nargs="+", default=["int8", "fp32"], choices=["int8", "fp32", "fp16"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run(*args.child)))
        return
    work = CACHE / f"encoder-settings-{args.size}"
    work.mkdir(parents=True, exist_ok=True)
    names = list(SETTINGS)
    rows = []
    for encoder in args.encoders:
        folder = prepare_one(args.size, encoder, "q8_0" if encoder == "int8" else "f16")  # the cached pairs
        path = str(next(folder.glob("encoder*.onnx")))

        def measure(name: str, path: str = path, encoder: str = encoder) -> dict[str, float]:
            return child([path, name, str(work / f"{encoder}-{names.index(name)}.npy")])

        runs = alternated_runs(names, args.repeat, measure)
        reference = np.load(work / f"{encoder}-0.npy")
        for name in names:
            diff = float(np.abs(np.load(work / f"{encoder}-{names.index(name)}.npy") - reference).max())
            row = {"encoder": encoder, "setting": name, "max_abs_diff_vs_default": diff,
                   **medians(runs[name])}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    lines = [
        (
            f"| {args.size} encoder | setting | s per audio s | encode s (30 s) | session load s "
            "| max abs diff vs default | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['encoder']} | {r['setting']} | {r['s_per_audio_s']:.4f} | {r['encode_s']:.2f} | {r['load_s']:.2f} "
            f"| {r['max_abs_diff_vs_default']:.1e} | {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
    ]
    meta = {"size": args.size, "seconds": SECONDS, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d")}
    write_results(f"encoder_settings_{args.size.replace('.', '')}", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
