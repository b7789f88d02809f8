"""Batched decoding (faster-whisper's BatchedInferencePipeline) against one-by-one decoding, side by side,
on the random-weight 0.6B shape (q8_0 decoder, int8 encoder: the default precision).

    python benchmarks/batch_speed.py --seconds 240 --threads 2 --batch-sizes 1 2 4 8

The same audio (real speech from tests/data/audio, cut into 30 s chunks) is transcribed in a fresh process
per configuration, with a forced token count (4 per audio second, end of sequence ignored) so that every
configuration decodes exactly the same number of tokens. Writes benchmarks/results/batch_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"


def run_one(folder: str, seconds: float, threads: int, batch: int) -> dict[str, float]:
    from harness import options, peak_rss_mib, speech

    from qwen_whisper_compat.engine.pipeline import Transcriber

    audio = speech(seconds)
    opts = options(overlap=False)
    with Transcriber(folder, threads=threads) as t:
        t.transcribe(audio[:16000], opts)  # warm-up
        start = time.perf_counter()
        if batch == 0:
            results = t.transcribe(audio, opts)
        else:
            results = list(t.transcribe_batched(audio, opts, batch_size=batch))
        wall = time.perf_counter() - start
        s = t.stats
    return {
        "wall_s": wall,
        "rtf": wall / seconds,
        "chunks": len(results),
        "generated_tokens": s.generated_tokens,
        "decode_tok_s": s.generated_tokens / (s.decode_wall_seconds - s.prefill_seconds),
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], args.seconds, args.threads, int(args.child[1]))))
        return

    from harness import prepare

    _, folders = prepare("0.6b")
    folder = str(folders["q8_0/int8"])
    rows = []
    for batch in [0, *args.batch_sizes]:
        cmd = [sys.executable, __file__, "--seconds", str(args.seconds), "--threads", str(args.threads),
               "--child", folder, str(batch)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        row = {"mode": "one by one" if batch == 0 else f"batched x{batch}", **json.loads(out.splitlines()[-1])}
        rows.append(row)
        print(row, file=sys.stderr)
    base = rows[0]["wall_s"]
    for row in rows:
        row["speedup"] = base / row["wall_s"]
    RESULTS.mkdir(exist_ok=True)
    meta = {"size": "0.6b", "precision": "q8_0/int8", "seconds": args.seconds, "threads": args.threads}
    (RESULTS / "batch_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        (f"0.6B shape, q8_0/int8, {args.seconds:.0f} s of speech in 30 s chunks, {args.threads} threads, "
         "4 tokens per audio second forced."),
        "",
        "| mode | wall s | RTF | decode tok/s | speed-up | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['wall_s']:.1f} | {r['rtf']:.3f} | {r['decode_tok_s']:.1f} | "
            f"{r['speedup']:.2f}x | {r['peak_rss_mib']:.0f} |"
        )
    (RESULTS / "batch_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
