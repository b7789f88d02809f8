"""End-to-end speed of the engine on random-weight models of the real 0.6B / 1.7B shapes, side by side
with llama.cpp's own decode timing and with the official ``qwen-asr`` transformers backend.

    python benchmarks/engine_speed.py --sizes 0.6b 1.7b --threads 2

For each size: a random checkpoint in the official layout (numpy safetensors + the real tokenizer) is
converted by our converter into each precision pair; then, on the same machine and the same 60 s of real
speech from tests/data/audio, each configuration runs in a fresh process (peak RSS is per process):

* ours: chunking, mel, ONNX encoder, prompt, GGUF prefill and greedy decode of a forced number of tokens
  (4 per audio second, end of sequence ignored), overlap of encode and decode on;
* raw llama.cpp: llama.cpp's own timing of the same decode steps (``llama_perf_context``), which leaves
  out all Python work: our decode tokens/s divided by it is the Python overhead;
* official: ``qwen-asr``'s processor and ``generate`` (fp32, the transformers backend) on the same
  checkpoint, the same chunks and the same forced token count.

Writes benchmarks/results/engine_speed.{json,md}. The helpers it shares with the other benchmarks are in
harness.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CACHE, CONFIGS, TOKENS_PER_SECOND, options, peak_rss_mib, prepare, run_child, speech, write_results


def run_ours(folder: str, seconds: float, threads: int, overlap: bool, chunk: float) -> dict[str, float]:
    from qwen_whisper_compat.engine.pipeline import Transcriber

    audio = speech(seconds)
    with Transcriber(folder, threads=threads) as t:
        t.transcribe(audio[:16000], options(overlap, chunk))  # warm-up: sessions, context, caches
        start = time.perf_counter()
        results = t.transcribe(audio, options(overlap, chunk))
        wall = time.perf_counter() - start
        s = t.stats
    ours_decode_s = s.decode_wall_seconds - s.prefill_seconds
    return {
        "wall_s": wall,
        "rtf": wall / seconds,
        "chunks": len(results),
        "encoder_s_per_audio_s": s.encode_seconds / seconds,
        "audio_tokens": s.prompt_audio_tokens,
        "text_tokens": s.prompt_text_tokens,
        "prompt_tokens": s.prompt_tokens,
        "prefill_ratio": s.prompt_tokens / (s.prompt_audio_tokens + s.prompt_text_tokens),
        "prefill_tok_s": s.prompt_tokens / s.prefill_seconds,
        "generated_tokens": s.generated_tokens,
        "decode_tok_s": s.generated_tokens / ours_decode_s,
        "raw_llama_decode_tok_s": s.generated_tokens / s.generate_seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_official(ckpt: str, seconds: float, threads: int) -> dict[str, float]:
    import torch
    from qwen_asr import Qwen3ASRModel
    from transformers import AutoProcessor

    from qwen_whisper_compat.engine.chunking import split_at_quiet_points

    torch.set_num_threads(threads)
    audio = speech(seconds)
    opts = options()
    model = Qwen3ASRModel.from_pretrained(ckpt, dtype=torch.float32, device_map="cpu")
    processor = AutoProcessor.from_pretrained(ckpt)
    prompt = model._build_text_prompt(context="", force_language=None)
    bounds = split_at_quiet_points(audio, 16000, opts.chunk_seconds, opts.search_seconds)

    def transcribe(wav: np.ndarray, n: int) -> None:
        inputs = processor(text=prompt, audio=wav, return_tensors="pt")
        model.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n)

    transcribe(audio[:16000], 2)  # warm-up
    start = time.perf_counter()
    tokens = 0
    for a, b in bounds:
        n = opts.token_cap((b - a) / 16000)
        transcribe(audio[a:b], n)
        tokens += n
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "rtf": wall / seconds,
        "chunks": len(bounds),
        "generated_tokens": tokens,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args)
    return result


def table(rows: list[dict[str, object]]) -> str:
    def f(v: object, spec: str, suffix: str = "") -> str:
        return "" if v is None else format(v, spec) + suffix

    lines = [
        ("| size | decoder/encoder | engine | RTF | wall s | vs official | encoder s/audio s "
         "| prefilled tok = audio + text (ratio) "
         "| prefill tok/s | decode tok/s | raw llama.cpp tok/s | ours/raw | peak RSS MiB |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g = r.get
        prefill = (
            f"{g('prompt_tokens')} = {g('audio_tokens')} + {g('text_tokens')} ({f(g('prefill_ratio'), '.2f')})"
            if g("prompt_tokens")
            else ""
        )
        cells = [
            g("size"), g("config"), g("engine"), f(g("rtf"), ".3f"), f(g("wall_s"), ".1f"),
            f(g("speedup_vs_official"), ".1f", "x"), f(g("encoder_s_per_audio_s"), ".4f"), prefill,
            f(g("prefill_tok_s"), ".0f"), f(g("decode_tok_s"), ".1f"), f(g("raw_llama_decode_tok_s"), ".1f"),
            f(g("decode_vs_raw"), ".3f"), f(g("peak_rss_mib"), ".0f"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["0.6b", "1.7b"], choices=["0.6b", "1.7b"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-official", action="store_true")
    ap.add_argument("--overlap", choices=["on", "off", "both"], default="on", help="encode/decode overlap")
    ap.add_argument("--chunk-seconds", type=float, nargs="+", default=[30.0])
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, seconds, threads, *rest = args.child
        if kind == "ours":
            out = run_ours(path, float(seconds), int(threads), overlap=rest[0] == "1", chunk=float(rest[1]))
        else:
            out = run_official(path, float(seconds), int(threads))
        print(json.dumps(out))
        return

    CACHE.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    for size in args.sizes:
        ckpt, folders = prepare(size)
        official = None
        if not args.no_official:
            official = child(["official", str(ckpt), str(args.seconds), str(args.threads)])
            rows.append({"size": size, "config": "fp32 (torch)", "engine": "official qwen-asr", **official})
            print(json.dumps(rows[-1]), file=sys.stderr)
        overlaps = {"on": ["1"], "off": ["0"], "both": ["1", "0"]}[args.overlap]
        for name in args.configs:
            for overlap in overlaps:
                for chunk in args.chunk_seconds:
                    cmd = ["ours", str(folders[name]), str(args.seconds), str(args.threads), overlap, str(chunk)]
                    ours = child(cmd)
                    engine = "qwen-whisper-compat" + ("" if overlap == "1" else " (no overlap)")
                    if len(args.chunk_seconds) > 1:
                        engine += f" {chunk:.0f} s chunks"
                    row: dict[str, object] = {"size": size, "config": name, "engine": engine, **ours}
                    row["decode_vs_raw"] = ours["decode_tok_s"] / ours["raw_llama_decode_tok_s"]
                    if official:
                        row["speedup_vs_official"] = official["wall_s"] / ours["wall_s"]
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
    meta = {"seconds": args.seconds, "threads": args.threads, "tokens_per_second": TOKENS_PER_SECOND}
    write_results("engine_speed", meta, rows, table(rows))


if __name__ == "__main__":
    main()
