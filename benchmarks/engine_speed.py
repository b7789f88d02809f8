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

Writes benchmarks/results/engine_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
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
CONFIGS = {"f16/fp32": ("fp32", "f16"), "q8_0/int8": ("int8", "q8_0"), "q4_k/int8": ("int8", "q4_k")}
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


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args)
    return result


def table(rows: list[dict[str, object]]) -> str:
    def f(v: object, spec: str, suffix: str = "") -> str:
        return "" if v is None else format(v, spec) + suffix

    lines = [
        "| size | decoder/encoder | engine | RTF | wall s | vs official | encoder s/audio s "
        "| prefilled tok = audio + text (ratio) "
        "| prefill tok/s | decode tok/s | raw llama.cpp tok/s | ours/raw | peak RSS MiB |",
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
    RESULTS.mkdir(exist_ok=True)
    meta = {"seconds": args.seconds, "threads": args.threads, "tokens_per_second": TOKENS_PER_SECOND}
    (RESULTS / "engine_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (RESULTS / "engine_speed.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
