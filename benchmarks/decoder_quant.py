"""Decoder quantizations side by side: prefill and decode speed in llama.cpp, and fidelity against f16, on
random weights of the real 0.6B (or 1.7B, or aligner) decoder shape.

    .venv/bin/python benchmarks/decoder_quant.py --size 0.6b --threads 2 --repeat 3

The f16 decoder our converter writes is quantized by llama.cpp's own quantizer to each type (q8_0, Q4_K_M
= our q4_k, and the types llama.cpp's CPU backend repacks for wide vector units at load time: Q4_0 and
IQ4_NL). Each type then runs, in a fresh process, what one 30 s chunk costs: a prefill of 830 embedding
rows (780 audio rows + 50 text tokens, as the pipeline's prompts) and 120 greedy decode steps (4 per audio
second; no end of sequence, so every type decodes the same count). Runs alternate between the types;
figures are medians. Fidelity: the cosine of the last prompt row's logits against f16, and how many of the
first 32 greedy tokens equal f16's. ``q8_0+q6_k-head`` and ``q8_0+q4_k-head`` are q8_0 with the vocabulary head
(the tied embedding table, read whole on every decode step) quantized apart.

Issue 29's bounds are measured in the same run (``references.py``): the read bandwidth, over the bytes a decode
step reads (every weight and the KV cache), bounds the decode rate; onnxruntime's int8 GEMM rate at the decoder's
shapes is the reference for the prefill's operations per second. Each step's sampling time (greedy choice and
log-normalizer over the vocabulary) is measured apart, to show what is spent outside llama.cpp.

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
from references import best_of, references

#: Our name -> llama.cpp file type.
TYPES = {
    "f16": None,
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q8_0+q6_k-head": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q8_0+q4_k-head": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "iq4_nl": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
}
#: Types whose vocabulary head (the tied embedding table, a quarter of a q8_0 0.6B decoder's bytes, read on every
#: decode step) is quantized apart from the rest: llama.cpp's ``output_tensor_type``.
HEAD_TYPES = {"q8_0+q6_k-head": "GGML_TYPE_Q6_K", "q8_0+q4_k-head": "GGML_TYPE_Q4_K"}
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
    quantize_as(src, tmp, str(TYPES[kind]), kind, threads=2, output_type=HEAD_TYPES.get(kind))
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
        step_overhead = _sampling_seconds(decoder.logits_view(0))
    tokens = list(generation.tokens)
    assert len(tokens) == DECODE_STEPS
    return {
        "prefill_s": prefill,
        "prefill_tok_s": PROMPT_ROWS / prefill,
        # generate() prefills again before decoding: take that prefill out
        "decode_tok_s": DECODE_STEPS / max(1e-9, total - prefill),
        # what each step spends outside llama_decode: the greedy choice and the log-normalizer over the vocabulary
        "sampling_ms_per_token": step_overhead * 1000,
        "logits": logits[:: max(1, logits.size // 20000)].tolist(),  # a spread subsample for the cosine
        "tokens": tokens[:AGREEMENT_TOKENS],
        "file_mib": Path(path).stat().st_size / 2**20,
        "peak_rss_mib": peak_rss_mib(),
    }


def _sampling_seconds(logits: np.ndarray, steps: int = 50) -> float:
    """Seconds per decode step that the sampler takes on a vocabulary's logits (greedy, as the engine runs)."""
    from qwen_whisper_compat.engine.sampling import Sampler, SamplingOptions

    sampler, logits = Sampler(SamplingOptions()), logits.copy()
    start = time.perf_counter()
    for _ in range(steps):
        sampler.choose(logits)
        sampler.log_normalizer(logits)
    return (time.perf_counter() - start) / steps


def decoder_bytes(path: Path) -> dict[str, float]:
    """What a decode step reads and a prompt row computes, from the GGUF's tensor table: every tensor's bytes
    (the vocabulary head is the tied embedding table, read whole on each step), the KV cache (f16) at the
    decode steps' mean position, and the multiply-adds of the layers' matrices per row (2 operations each)."""
    from qwen_whisper_compat.engine.gguf_file import GGUFIndex

    index = GGUFIndex(path)
    try:
        infos = sorted(index.tensors.values(), key=lambda t: t.offset)
        ends = [t.offset for t in infos[1:]] + [path.stat().st_size]
        weights = float(sum(end - t.offset for t, end in zip(infos, ends, strict=True)))
        arch = index.metadata["general.architecture"]
        layers = int(index.metadata[f"{arch}.block_count"])
        kv_heads = int(index.metadata[f"{arch}.attention.head_count_kv"])
        head_dim = int(index.metadata[f"{arch}.attention.key_length"])
        matrix_params = sum(int(np.prod(t.shape)) for t in infos if t.name.startswith("blk.") and len(t.shape) == 2)
    finally:
        index.close()
    kv = layers * 2 * kv_heads * head_dim * 2 * (PROMPT_ROWS + DECODE_STEPS / 2)
    return {"weight_bytes": weights, "kv_bytes": kv, "prefill_flop_per_row": 2.0 * matrix_params}


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
    before = references(args.threads)  # the machine's own bounds, in this run
    print("references", before, file=sys.stderr)

    def measure(kind: str) -> dict[str, object]:
        result = child([str(paths[kind]), str(rows_file), str(args.threads)])
        print(kind, {k: v for k, v in result.items() if k not in ("logits", "tokens")}, file=sys.stderr)
        return result

    runs = alternated_runs(kinds, args.repeat, measure)
    refs = best_of(before, references(args.threads))
    bandwidth = refs[f"bandwidth_gbs_{args.threads}_threads"] * 1e9
    reference = runs["f16"][0]
    ref_logits, ref_tokens = np.array(reference["logits"]), list(reference["tokens"])  # type: ignore[call-overload]
    rows = []
    for kind in kinds:
        first = runs[kind][0]
        logits = np.array(first["logits"])
        cosine = float(logits @ ref_logits / (np.linalg.norm(logits) * np.linalg.norm(ref_logits)))
        tokens = list(first["tokens"])  # type: ignore[call-overload]
        agree = next((i for i, (a, b) in enumerate(zip(tokens, ref_tokens, strict=True)) if a != b), len(tokens))
        size = decoder_bytes(paths[kind])
        median = medians(runs[kind], ("prefill_tok_s", "decode_tok_s", "prefill_s", "peak_rss_mib",
                                      "sampling_ms_per_token"))  # fmt: skip
        bound = bandwidth / (size["weight_bytes"] + size["kv_bytes"])
        prefill_gops = median["prefill_tok_s"] * size["prefill_flop_per_row"] / 1e9
        rows.append({
            "type": kind, "prefill_tok_s": median["prefill_tok_s"], "decode_tok_s": median["decode_tok_s"],
            "prefill_s": median["prefill_s"], "file_mib": first["file_mib"], "peak_rss_mib": median["peak_rss_mib"],
            "logit_cosine_vs_f16": cosine, "greedy_agreement": agree, **size,
            "decode_bound_tok_s": bound, "decode_of_bound": median["decode_tok_s"] / bound,
            "sampling_ms_per_token": median["sampling_ms_per_token"],
            "prefill_gops": prefill_gops, "prefill_of_ort_int8_gemm": prefill_gops / refs["ort_int8_gemm_gops"],
        })  # fmt: skip
    lines = [
        (
            f"| {args.size} decoder | file MiB | prefill tok/s ({PROMPT_ROWS} rows) | prefill GOPS (of ORT int8 GEMM) "
            f"| decode tok/s | decode bound tok/s (MB read per token) | decode of bound | sampling ms/token "
            f"| logit cosine vs f16 | greedy tokens equal to f16's (of {AGREEMENT_TOKENS}) | peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['type']} | {r['file_mib']:.0f} | {r['prefill_tok_s']:.0f} "
            f"| {r['prefill_gops']:.0f} ({r['prefill_of_ort_int8_gemm']:.2f}) | {r['decode_tok_s']:.1f} "
            f"| {r['decode_bound_tok_s']:.1f} ({(r['weight_bytes'] + r['kv_bytes']) / 1e6:.0f}) "
            f"| {r['decode_of_bound']:.2f} | {r['sampling_ms_per_token']:.2f} "
            f"| {r['logit_cosine_vs_f16']:.5f} | {r['greedy_agreement']} | {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
        "",
        (
            f"References measured in this run, the best of before and after ({args.threads} threads): read bandwidth "
            f"{refs[f'bandwidth_gbs_{args.threads}_threads']:.1f} GB/s ({refs['bandwidth_gbs_1_thread']:.1f} on one "
            f"thread); onnxruntime GEMM at the decoder's shapes {refs['gemm_shapes']}: int8 "
            f"{refs['ort_int8_gemm_gops']:.0f} GOPS, fp32 {refs['ort_fp32_gemm_gops']:.0f} GFLOP/s. The decode bound "
            "is the bandwidth over the bytes a step reads: every weight (the tied vocabulary head is the whole "
            "embedding table) and the f16 KV cache at the steps' mean position."
        ),
    ]
    meta = {"size": args.size, "threads": args.threads, "repeat": args.repeat, "date": time.strftime("%Y-%m-%d"),
            "prompt_rows": PROMPT_ROWS, "decode_steps": DECODE_STEPS, "references": refs}  # fmt: skip
    write_results(f"decoder_quant_{args.size.replace('.', '')}", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
