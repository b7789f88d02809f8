"""What a user gets: ``load_model(...).transcribe(audio)`` timed as it runs by default (the forced aligner
timing every segment), with ``word_timestamps=True``, and without an aligner, at each precision, on
random-weight models of the real shapes, next to the bare engine (``engine_speed.py``'s measurement).

    .venv/bin/python benchmarks/default_path.py --sizes 0.6b 1.7b --threads 2 --repeat 3

The same 60 s of speech and 4 decoded tokens per audio second on every side
(``harness.forced_tokens_env``, end of sequence ignored). Greedy decoding only: whisper's
temperature fallback would rerun every chunk on random weights (their log-probabilities are always low),
which a real model rarely does. The language is given (English): random weights name none, and the
whisper face would then run a language-detection pass a real model's output makes unnecessary. The aligner is the released aligner's shape at the same precision as the
ASR model, as ``load_model`` converts it. Each run is a fresh process (peak RSS is per process); the runs
alternate between the paths and each figure is a median.

Writes benchmarks/results/default_path.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aligner_speed import prepare as prepare_aligner
from harness import (
    CONFIGS,
    TOKENS_PER_SECOND,
    alternated_runs,
    forced_tokens_env,
    options,
    peak_rss_mib,
    prepare_one,
    run_child,
    speech,
    write_results,
)  # fmt: skip

#: The precision ``load_model`` converts to when none is asked for.
DEFAULT_CONFIG = "q8_0/int8"
PATHS = {
    "engine": "engine (Transcriber, no aligner)",
    "no_aligner": "load_model(aligner=False).transcribe",
    "default": "load_model().transcribe (aligner times segments)",
    "words": "load_model().transcribe(word_timestamps=True)",
}


def run(path: str, asr: str, aligner: str, seconds: float, threads: int) -> dict[str, float]:
    audio = speech(seconds)
    if path == "engine":
        from qwen_whisper_compat.engine.pipeline import Transcriber

        opts = dataclasses.replace(options(), language="English")
        with Transcriber(asr, threads=threads) as t:
            t.transcribe(audio[:16000], opts)  # warm-up
            start = time.perf_counter()
            t.transcribe(audio, opts)
            wall = time.perf_counter() - start
            stats = t.stats
    else:
        import qwen_whisper_compat

        model = qwen_whisper_compat.load_model(asr, aligner=False if path == "no_aligner" else aligner, threads=threads)
        try:
            words = path == "words"
            model.transcribe(audio[:16000], language="en", temperature=0.0, word_timestamps=words)  # warm-up
            start = time.perf_counter()
            result = model.transcribe(audio, language="en", temperature=0.0, word_timestamps=words)
            wall = time.perf_counter() - start
            stats = model.recognizer.transcriber.stats
        finally:
            model.close()
        assert result["segments"], "the random model always says something"
    return {
        "wall_s": wall,
        "rtf": wall / seconds,
        "chunks": stats.chunks,
        "encode_s": stats.encode_seconds,
        "prefill_s": stats.prefill_seconds,
        "decode_s": stats.decode_wall_seconds - stats.prefill_seconds,
        "align_s": stats.align_seconds,
        "generated_tokens": stats.generated_tokens,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args, forced_tokens_env(TOKENS_PER_SECOND))
    return result


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        (
            "| size | decoder/encoder | path | RTF | wall s | chunks | tokens | encode s | prefill s | decode s "
            "| align s | align s/audio s | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        config = str(r["config"]) + (" (default)" if r["config"] == DEFAULT_CONFIG else "")
        lines.append(
            f"| {r['size']} | {config} | {PATHS[str(r['path'])]} | {r['rtf']:.3f} | {r['wall_s']:.1f} | {r['chunks']} "
            f"| {r['generated_tokens']} | {r['encode_s']:.1f} | {r['prefill_s']:.1f} | {r['decode_s']:.1f} "
            f"| {r['align_s']:.1f} | {float(str(r['align_s'])) / float(str(r['seconds'])):.3f} | {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["0.6b", "1.7b"], choices=["0.6b", "1.7b"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        path, asr, aligner, seconds, threads = args.child
        print(json.dumps(run(path, asr, aligner, float(seconds), int(threads))))
        return

    rows: list[dict[str, object]] = []
    for size in args.sizes:
        for config in args.configs:
            encoder, decoder = CONFIGS[config]
            asr, aligner = prepare_one(size, encoder, decoder), prepare_aligner(encoder, decoder)
            rest = [str(asr), str(aligner), str(args.seconds), str(args.threads)]

            def measure(path: str, rest: list[str] = rest) -> dict[str, float]:
                return child([path, *rest])

            runs = alternated_runs(args.paths, args.repeat, measure)
            for path, measured in runs.items():
                middle = statistics.median(m["wall_s"] for m in measured)
                median = min(measured, key=lambda m: abs(m["wall_s"] - middle))  # the run of the median time
                row: dict[str, object] = {"size": size, "config": config, "path": path, "seconds": args.seconds,
                                          **median, "wall_s_runs": [m["wall_s"] for m in measured]}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    meta = {"seconds": args.seconds, "threads": args.threads, "tokens_per_second": TOKENS_PER_SECOND,
            "repeat": args.repeat, "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    write_results("default_path", meta, rows, table(rows))


if __name__ == "__main__":
    main()
