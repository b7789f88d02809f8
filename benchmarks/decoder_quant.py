"""Decoder quantizations side by side: prefill and decode speed in llama.cpp, and fidelity against f16, on
random weights of the real 0.6B (or 1.7B, or aligner) decoder shape.

    .venv/bin/python benchmarks/decoder_quant.py --size 0.6b --threads 2 --repeat 3

The f16 decoder our converter writes is quantized by llama.cpp's own quantizer to each type (q8_0, Q4_K_M
= our q4_k, and the types llama.cpp's CPU backend repacks for wide vector units at load time: Q4_0 and
IQ4_NL). Each type then runs, in a fresh process, what one 30 s chunk costs: a prefill of 830 embedding
rows (780 audio rows + 50 text tokens, as the pipeline's prompts) and 120 greedy decode steps (4 per audio
second; no end of sequence, so every type decodes the same count). Runs alternate between the types;
figures are medians. Fidelity: the cosine of the last prompt row's logits against f16, and how many of the
first 32 greedy tokens equal f16's.

Writes benchmarks/results/decoder_quant_<size>.{json,md}.
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

from harness import CACHE, alternated_runs, medians, peak_rss_mib, prepare_one, run_child, write_results

#: Our name -> llama.cpp file type.
TYPES = {
    "f16": None,
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "iq4_nl": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
}
PROMPT_ROWS = 830
DECODE_STEPS = 120
AGREEMENT_TOKENS = 32


def f16_decoder(size: str) -> Path:
    if size == "aligner":
        from aligner_speed import prepare

        return prepare("fp32", "f16") / "decoder.f16.gguf"
    return prepare_one(size, "fp32", "f16") / "decoder.f16.gguf"


def quantized(size: str, kind: str) -> Path:
    """The f16 decoder quantized to ``kind`` by llama.cpp (written once, cached)."""
    src = f16_decoder(size)
    if TYPES[kind] is None:
        return src
    out = CACHE / f"decoder-quant-{size}" / f"decoder.{kind}.gguf"
    if not out.is_file():
        llama_quantize(src, out, kind)
    return out


def llama_quantize(src: Path, out: Path, kind: str) -> None:
    """Write ``src`` quantized to ``kind`` (a key of :data:`TYPES`) by llama.cpp at ``out``, atomically."""
    from qwen_whisper_compat.engine.llama_quantize import quantize_as

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    quantize_as(src, tmp, str(TYPES[kind]), kind, threads=2)
    tmp.rename(out)


def prompt(size: str) -> Path:
    """Embedding rows of the prompt's size with the scale of real rows: f16 token embeddings of random ids,
    the same rows for every type (written once, cached)."""
    from qwen_whisper_compat.engine.gguf_file import TokenEmbeddings

    out = CACHE / f"decoder-quant-{size}" / "prompt.npy"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        ids = np.random.default_rng(0).integers(0, 150000, PROMPT_ROWS)
        np.save(out, np.ascontiguousarray(TokenEmbeddings(f16_decoder(size))(ids.tolist()), dtype=np.float32))
    return out


def run(path: str, rows_file: str, threads: int) -> dict[str, object]:
    from qwen_whisper_compat.engine.decoder import GGUFDecoder

    rows = np.load(rows_file)
    with GGUFDecoder(path, n_ctx=PROMPT_ROWS + DECODE_STEPS + 16, n_threads=threads) as decoder:
        decoder.generate(rows[:64], 4, eos=())  # warm-up: repacked weights paged in, graph built
        start = time.perf_counter()
        decoder.reset()
        decoder.eval_embeddings(rows, 0, [PROMPT_ROWS - 1])
        prefill = time.perf_counter() - start
        logits = decoder.logits(PROMPT_ROWS - 1)
        start = time.perf_counter()
        generation = decoder.generate(rows, DECODE_STEPS, eos=())  # reuses nothing: a new array
        total = time.perf_counter() - start
    tokens = list(generation.tokens)
    assert len(tokens) == DECODE_STEPS
    return {
        "prefill_s": prefill,
        "prefill_tok_s": PROMPT_ROWS / prefill,
        # generate() prefills again before decoding: take that prefill out
        "decode_tok_s": DECODE_STEPS / max(1e-9, total - prefill),
        "logits": logits[:: max(1, logits.size // 20000)].tolist(),  # a spread subsample for the cosine
        "tokens": tokens[:AGREEMENT_TOKENS],
        "file_mib": Path(path).stat().st_size / 2**20,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(args: list[str]) -> dict[str, object]:
    result: dict[str, object] = run_child(__file__, args)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b", "aligner"])
    ap.add_argument("--types", nargs="+", default=list(TYPES), choices=list(TYPES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run(args.child[0], args.child[1], int(args.child[2]))))
        return
    kinds = ["f16", *[k for k in args.types if k != "f16"]]
    paths = {kind: quantized(args.size, kind) for kind in kinds}
    rows_file = prompt(args.size)

    def measure(kind: str) -> dict[str, object]:
        result = child([str(paths[kind]), str(rows_file), str(args.threads)])
        print(kind, {k: v for k, v in result.items() if k not in ("logits", "tokens")}, file=sys.stderr)
        return result

    runs = alternated_runs(kinds, args.repeat, measure)
    reference = runs["f16"][0]
    ref_logits, ref_tokens = np.array(reference["logits"]), list(reference["tokens"])  # type: ignore[call-overload]
    rows = []
    for kind in kinds:
        first = runs[kind][0]
        logits = np.array(first["logits"])
        cosine = float(logits @ ref_logits / (np.linalg.norm(logits) * np.linalg.norm(ref_logits)))
        tokens = list(first["tokens"])  # type: ignore[call-overload]
        agree = next((i for i, (a, b) in enumerate(zip(tokens, ref_tokens, strict=True)) if a != b), len(tokens))

        median = medians(runs[kind], ("prefill_tok_s", "decode_tok_s", "prefill_s", "peak_rss_mib"))
        rows.append({
            "type": kind, "prefill_tok_s": median["prefill_tok_s"], "decode_tok_s": median["decode_tok_s"],
            "prefill_s": median["prefill_s"], "file_mib": first["file_mib"], "peak_rss_mib": median["peak_rss_mib"],
            "logit_cosine_vs_f16": cosine, "greedy_agreement": agree,
        })  # fmt: skip
    lines = [
        (
            f"| {args.size} decoder | file MiB | prefill tok/s ({PROMPT_ROWS} rows) | decode tok/s "
            f"| logit cosine vs f16 | greedy tokens equal to f16's (of {AGREEMENT_TOKENS}) | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['type']} | {r['file_mib']:.0f} | {r['prefill_tok_s']:.0f} | {r['decode_tok_s']:.1f} "
            f"| {r['logit_cosine_vs_f16']:.5f} | {r['greedy_agreement']} | {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
    ]
    meta = {"size": args.size, "threads": args.threads, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d"),
            "prompt_rows": PROMPT_ROWS, "decode_steps": DECODE_STEPS}  # fmt: skip
    write_results(f"decoder_quant_{args.size.replace('.', '')}", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
