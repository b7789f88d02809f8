"""The forced aligner's decoder pass (prefill) in llama.cpp and as an onnxruntime graph: speed on the released
aligner's shape, fidelity on the tiny parity model and the real clips (issue 29, point 1).

    python benchmarks/aligner_fidelity.py --threads 2

Speed: one prompt of the 0.6B aligner's shape (``--seconds`` of audio = 13 rows a second, plus 2.5 words a
second, each word's tokens and two ``<timestamp>`` slots), random rows, the same for every engine: llama.cpp
(GGUF q8_0, bf16, q4_k; hidden states at the slots, head in numpy, as ``ForcedAligner`` does) and the
onnxruntime graph of convert/onnx_aligner.py (fp32, dynamic int8 with u8 per-channel weights as the converter
writes it, and MatMulNBits 8-bit with accuracy level 4). Each engine runs in a fresh process: a warm-up pass,
then ``--repeat`` timed passes (median). In the same run: onnxruntime's raw int8 and fp32 GEMM rate at the
decoder's shapes, so the ratios are one machine's.

Fidelity (random weights cannot time real words, so the paths are compared with each other on one model):
the tiny aligner of the parity tests (tests/tiny_models.py, seed 2), prompts built from the real clips in
../shared/audio (or tests/data/audio) with their transcripts. Timestamp-class argmax agreement of every slot
with the official fp32 decoder (``qwen-asr``'s torch modules on the same prompt rows), and word-boundary
difference (ms, after the timestamp repair) of each path against the llama.cpp f32 path.

Writes benchmarks/results/aligner_fidelity.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import CACHE, peak_rss_mib, run_child, write_results
from references import DECODER_SHAPES, ort_gemm_gops

WORK = CACHE / "aligner-prefill"
GGUFS = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "bf16": "LLAMA_FTYPE_MOSTLY_BF16", "q4_k": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
GRAPHS = ("fp32", "int8", "nbits8", "fp32+gqa", "int8+gqa")
AUDIO_DIRS = (
    HERE.parent.parent / "shared" / "audio",
    Path("/work/shared/audio"),
    HERE.parent / "tests" / "data" / "audio",
)
CLIPS = {
    "jfk.flac": ("English", ("And so my fellow Americans, ask not what your country can do for you, ask what you can "
                 "do for your country.")),
    "librispeech_1995-1837-0001.wav": ("English", ("It was the first great sorrow of his life it was not so much the "
                                       "loss of the cotton itself but the fantasy the hopes the dreams built around it")),
    "aishell_BAC009S0724W0121.wav": ("Chinese", "广州市房地产中介协会分析"),
    "multilingual.mp3": ("English", " ".join(["the quick brown fox jumps over the lazy dog"] * 12)),
}  # fmt: skip


# ------------------------------------------------------------------------------------------- 0.6B files
def prepare_speed() -> dict[str, Path]:
    """The 0.6B aligner's decoder as GGUFs and graphs, converted once from a random checkpoint (cached)."""
    from realshape import write_checkpoint

    from qwen_whisper_compat.convert.checkpoint import Checkpoint
    from qwen_whisper_compat.convert.gguf_decoder import write_decoder_gguf
    from qwen_whisper_compat.convert.onnx_aligner import FLOAT_MATMULS, build_aligner_graph
    from qwen_whisper_compat.convert.onnx_graph import save_model
    from qwen_whisper_compat.convert.quantize import to_int8
    from qwen_whisper_compat.convert.tokenizer import read_tokenizer
    from qwen_whisper_compat.engine.llama_quantize import quantize_as

    WORK.mkdir(parents=True, exist_ok=True)
    ckpt = Checkpoint(write_checkpoint(CACHE / "ckpt-aligner", "aligner"))
    paths = {f"gguf-{k}": WORK / f"decoder.{k}.gguf" for k in GGUFS} | {
        f"onnx-{k}": WORK / f"aligner_decoder.{k}.onnx" for k in GRAPHS
    }
    base = WORK / "decoder.f16.gguf"
    if not all(paths[f"gguf-{k}"].is_file() for k in GGUFS):
        tok = read_tokenizer(ckpt.path, ckpt.decoder_dims().vocab_size)
        write_decoder_gguf(ckpt, tok, ckpt.special_tokens(tok.vocab, tok.special_ids), base, "f16")
        for k, ftype in GGUFS.items():
            quantize_as(base, paths[f"gguf-{k}"], ftype, k)
        base.unlink()
    for gqa in ("", "+gqa"):
        fp32 = paths[f"onnx-fp32{gqa}"]
        if not fp32.is_file():
            save_model(build_aligner_graph(ckpt, fused_attention=bool(gqa)), fp32)
        if not paths[f"onnx-int8{gqa}"].is_file():
            to_int8(fp32, paths[f"onnx-int8{gqa}"], exclude=FLOAT_MATMULS)
    if not paths["onnx-nbits8"].is_file():
        to_nbits8(paths["onnx-fp32"], paths["onnx-nbits8"])
    return paths


def to_nbits8(src: Path, dst: Path) -> None:
    """MatMulNBits, 8-bit symmetric blocks of 32, int8 compute (accuracy level 4); the head stays fp32."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from qwen_whisper_compat.convert.onnx_aligner import FLOAT_MATMULS
    from qwen_whisper_compat.convert.onnx_graph import save_model

    model = onnx.load_model(str(src))
    q = MatMulNBitsQuantizer(
        model, bits=8, block_size=32, is_symmetric=True, accuracy_level=4, nodes_to_exclude=list(FLOAT_MATMULS)
    )
    q.process()
    save_model(q.model.model, dst)


def prompt_shape(seconds: float) -> tuple[int, list[int]]:
    """Rows and slot rows of an aligner prompt over ``seconds`` of audio at 2.5 words a second (1.3 tokens a
    word): ``<|audio_start|>``, 13 audio rows a second, ``<|audio_end|>``, then each word and its two slots."""
    rows = 2 + round(13 * seconds)
    slots = []
    for w in range(round(2.5 * seconds)):
        rows += 1 + (w % 3 == 0)
        slots += [rows, rows + 1]
        rows += 2
    return rows, slots


def time_prefill(kind: str, path: str, seconds: float, threads: int, repeat: int) -> dict[str, float]:
    """Child: one engine's prefill of the same prompt, warm-up then ``repeat`` timed passes."""
    n_rows, slots = prompt_shape(seconds)
    embeds = (np.random.default_rng(0).standard_normal((n_rows, 1024), dtype=np.float32) * 0.05).astype(np.float32)
    head = np.random.default_rng(1).standard_normal((5000, 1024), dtype=np.float32) * 0.02
    if kind == "gguf":
        from qwen_whisper_compat.engine.decoder import GGUFDecoder

        dec = GGUFDecoder(path, n_ctx=n_rows, n_threads=threads, capture_hidden=True)

        def run(rows: int = n_rows) -> np.ndarray:
            return dec.hidden_states(embeds[:rows], [s for s in slots if s < rows]) @ head.T
    else:
        from qwen_whisper_compat.engine.aligner_onnx import EMBEDS_NAME, SLOTS_NAME
        from qwen_whisper_compat.engine.encoder import open_session

        sess = open_session(path, None, threads)
        feed = {EMBEDS_NAME: embeds, SLOTS_NAME: np.asarray(slots, dtype=np.int64)}

        def run(rows: int = n_rows) -> np.ndarray:
            return sess.run(None, feed)[0]

    run(64)  # llama.cpp: its graph and buffers; onnxruntime: the arena, at the full shape
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    return {"rows": n_rows, "slots": len(slots), "prefill_s": s, "rows_per_s": n_rows / s, "min_s": min(times),
            "peak_rss_mib": peak_rss_mib()}  # fmt: skip


def gemm_rates(threads: int, repeat: int) -> list[dict[str, float]]:
    """Child: onnxruntime's raw MatMul rate at the decoder's shapes, fp32 and dynamic int8 (u8 weights), each the
    best of ``max(5, 3 * repeat)`` runs (references.py's measurement)."""
    runs = max(5, repeat * 3)
    return [
        {"m": m, "k": k, "n": n, **{f"{name}_gops": ort_gemm_gops(m, k, n, threads, int8, runs)
                                    for name, int8 in (("fp32", False), ("int8", True))}}
        for m, k, n in DECODER_SHAPES
    ]  # fmt: skip


def linear_ops(rows: int, slots: int) -> float:
    """Multiply-adds x 2 of the 0.6B aligner decoder's weight matrices over one prompt (the last layer's query,
    o_proj and MLP run on the slot rows only, as in the graph; attention products not counted)."""
    h, qkv, o, mlp = 1024, 1024 * 4096, 2048 * 1024, 3 * 1024 * 3072
    full = 27 * rows * (qkv + o + mlp) + rows * 2048 * h + slots * (1024 * 2048 + o + mlp)
    return 2.0 * (full + slots * h * 5000)


# -------------------------------------------------------------------------------------- tiny fidelity
def fidelity() -> dict[str, Any]:
    """Class agreement with the official fp32 decoder and word-boundary differences against llama.cpp f32,
    on the tiny parity aligner and the real clips."""
    import tiny_models
    import torch
    from qwc_fixtures import load_official
    from qwen_asr import Qwen3ForcedAligner

    from qwen_whisper_compat.audio import load_audio
    from qwen_whisper_compat.convert import convert_checkpoint
    from qwen_whisper_compat.engine.aligner import ForcedAligner
    from qwen_whisper_compat.engine.mel import log_mel_spectrogram
    from qwen_whisper_compat.engine.prompt import Prompt
    from qwen_whisper_compat.engine.timestamps import fix_timestamps
    from qwen_whisper_compat.engine.words import split_words

    ckpt = CACHE / "tiny-aligner-2"
    if not (ckpt / "config.json").is_file():
        tiny_models.build_checkpoint(ckpt, "aligner", "bf16", 2)
    folders = {}
    for name, decoder, graph in (("f32", "f32", "fp32"), ("int8", "f32", "int8"), ("q8_0", "q8_0", "none")):
        folders[name] = CACHE / f"tiny-aligner-2-{name}"
        if not (folders[name] / "manifest.json").is_file():
            convert_checkpoint(ckpt, folders[name], "fp32", decoder, overwrite=True, aligner_graph=graph)
    official = load_official(Qwen3ForcedAligner, ckpt).model.thinker
    paths = {
        "llama.cpp f32": ForcedAligner(folders["f32"], threads=2, exact=True, engine="llama"),
        "llama.cpp q8_0": ForcedAligner(folders["q8_0"], threads=2, engine="llama"),
        "onnx fp32": ForcedAligner(folders["f32"], threads=2, engine="onnx"),
        "onnx int8": ForcedAligner(folders["int8"], threads=2, engine="onnx"),
    }
    base = paths["llama.cpp f32"]
    audio_dir = next(d for d in AUDIO_DIRS if (d / "jfk.flac").is_file())
    agree: dict[str, list[bool]] = {k: [] for k in paths}
    delta: dict[str, list[int]] = {k: [] for k in paths}
    n_slots = 0
    for clip, (language, text) in CLIPS.items():
        audio = load_audio(audio_dir / clip)[: 60 * 16000]
        units = split_words(text, language)
        feats = base.encoder(log_mel_spectrogram(audio))
        ids = [base.tokens.audio_start, *[base.tokens.audio_pad] * len(feats), base.tokens.audio_end]
        slots: list[int] = []
        for unit in units:
            ids += base.decoder.tokenize(unit)
            slots += [len(ids), len(ids) + 1]
            ids += [base.timestamp] * 2
        embeds = Prompt(ids, 1, len(feats)).embed(base.decoder.token_embeddings, feats)
        with torch.no_grad():
            hidden = official.model(inputs_embeds=torch.from_numpy(embeds)[None]).last_hidden_state[0]
            ref = official.lm_head(hidden[slots]).numpy().argmax(1)
        ref_ms = None
        for name, aligner in paths.items():
            rows = Prompt(ids, 1, len(feats)).embed(aligner.decoder.token_embeddings, feats)
            classes = aligner.slot_logits(rows, slots).argmax(1)
            agree[name] += list(classes == ref)
            ms = fix_timestamps((classes * aligner.segment_ms).tolist())
            ref_ms = ms if ref_ms is None else ref_ms
            delta[name] += [abs(a - b) for a, b in zip(ms, ref_ms, strict=True)]
        n_slots += len(slots)
    for a in paths.values():
        a.close()
    return {
        name: {"class_agreement": float(np.mean(agree[name])), "mean_abs_ms": float(np.mean(delta[name])),
               "max_abs_ms": float(np.max(delta[name])), "slots": n_slots}
        for name in paths
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        what = args.child[0]
        if what == "prefill":
            kind, path, seconds, threads, repeat = args.child[1:]
            result: Any = time_prefill(kind, path, float(seconds), int(threads), int(repeat))
        elif what == "gemm":
            result = gemm_rates(int(args.child[1]), int(args.child[2]))
        else:
            result = fidelity()
        print(json.dumps(result))
        return

    paths = prepare_speed()
    gemm = run_child(__file__, ["gemm", str(args.threads), str(args.repeat)])
    int8_rate = statistics.mean(g["int8_gops"] for g in gemm)
    rows: list[dict[str, Any]] = []
    for name, path in paths.items():
        kind, precision = name.split("-")
        r = run_child(__file__, ["prefill", kind, str(path), str(args.seconds), str(args.threads), str(args.repeat)])
        gops = linear_ops(r["rows"], r["slots"]) / r["prefill_s"] / 1e9
        engine = "llama.cpp" if kind == "gguf" else "onnxruntime"
        rows.append({"engine": engine, "precision": precision, **r, "gops": gops, "of_int8_gemm": gops / int8_rate})
        print(json.dumps(rows[-1]), file=sys.stderr)
    fid = run_child(__file__, ["fidelity"])
    q8 = next(r for r in rows if r["precision"] == "q8_0")
    lines = [
        (
            f"Prefill of one aligner prompt, 0.6B shape, {args.seconds:.0f} s of audio: {q8['rows']} rows, "
            f"{q8['slots']} slots; {args.threads} threads, median of {args.repeat}."
        ),
        "",
        (
            "| engine | weights | prefill s | rows/s | x llama.cpp q8_0 | GEMM-equivalent GOPS | of int8 GEMM rate "
            "| peak RSS MiB |"
        ),
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['engine']} | {r['precision']} | {r['prefill_s']:.2f} | {r['rows_per_s']:.0f} "
            f"| {q8['prefill_s'] / r['prefill_s']:.2f} | {r['gops']:.0f} | {r['of_int8_gemm']:.2f} "
            f"| {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
        "",
        "onnxruntime MatMul alone at the decoder's shapes, same run:",
        "",
        "| M x K x N | fp32 GFLOP/s | int8 (u8 weights) GOPS |",
        "|---|---|---|",
        *(f"| {g['m']} x {g['k']} x {g['n']} | {g['fp32_gops']:.0f} | {g['int8_gops']:.0f} |" for g in gemm),
        "",
        (
            "Fidelity on the tiny parity aligner (random weights), prompts from the real clips: timestamp-class argmax "
            "agreement with the official fp32 decoder, and |difference| of the repaired slot times against llama.cpp f32."
        ),
        "",
        "| path | class agreement | mean abs ms | max abs ms | slots |",
        "|---|---|---|---|---|",
        *(
            f"| {k} | {v['class_agreement']:.4f} | {v['mean_abs_ms']:.1f} | {v['max_abs_ms']:.0f} | {v['slots']} |"
            for k, v in fid.items()
        ),
    ]
    meta = {"seconds": args.seconds, "threads": args.threads, "repeat": args.repeat, "gemm": gemm, "fidelity": fid}
    write_results("aligner_fidelity", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
