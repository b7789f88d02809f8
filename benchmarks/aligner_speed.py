"""Forced-aligner cost per audio second on a random-weight model of the released Qwen3-ForcedAligner-0.6B
shape, for int8/fp32 encoders and q8_0/q4_k decoders, side by side with the official ``qwen-asr`` aligner.

    python benchmarks/aligner_speed.py --threads 2

60 s of real speech cut into the pipeline's 30 s chunks, each aligned against a transcript of 2.5 words per
second (the speaking rate of the test clips). Each configuration runs in a fresh process. Also measured: the
same pass through llama.cpp's embeddings output (``embeddings=True``), which makes llama.cpp compute the
152064-wide vocabulary head for every row; ours stops the graph before the head. Writes
benchmarks/results/aligner_speed.{json,md}.
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

from harness import CACHE, RESULTS, peak_rss_mib, run_child, speech

CONFIGS = {"q8_0/int8": ("int8", "q8_0"), "q4_k/int8": ("int8", "q4_k"), "q8_0/fp32": ("fp32", "q8_0")}
WORDS = ("and so my fellow americans ask not what your country can do for you ask what you can do for your "
         "country it was the first great sorrow of his life").split()  # fmt: skip


def chunks(seconds: float) -> list[tuple[np.ndarray, str]]:
    from qwen_whisper_compat.engine.chunking import split_at_quiet_points

    audio = speech(seconds)
    out = []
    for a, b in split_at_quiet_points(audio, 16000, 30.0, 5.0):
        n = round((b - a) / 16000 * 2.5)
        out.append((audio[a:b], " ".join(WORDS[i % len(WORDS)] for i in range(n))))
    return out


def run_ours(folder: str, seconds: float, threads: int) -> dict[str, float]:
    from qwen_whisper_compat.engine.aligner import ForcedAligner

    work = chunks(seconds)
    with ForcedAligner(folder, threads=threads) as aligner:
        aligner.align(work[0][0][:16000], "warm up", "English")
        start = time.perf_counter()
        n_words = sum(len(aligner.align(audio, text, "English")) for audio, text in work)
        wall = time.perf_counter() - start
    return {"wall_s": wall, "s_per_audio_s": wall / seconds, "words": n_words, "peak_rss_mib": peak_rss_mib()}


def run_embeddings_output(folder: str, seconds: float, threads: int) -> dict[str, float]:
    """The same slots read through llama.cpp's embeddings output (all rows, vocabulary head computed)."""
    from qwen_whisper_compat.engine.aligner import ForcedAligner
    from qwen_whisper_compat.engine.decoder import GGUFDecoder
    from qwen_whisper_compat.engine.mel import log_mel_spectrogram
    from qwen_whisper_compat.engine.words import split_words

    work = chunks(seconds)
    with ForcedAligner(folder, threads=threads) as aligner:
        dec = GGUFDecoder(aligner.model_dir.file_path("decoder"), n_ctx=1024, n_threads=threads, embeddings=True)
        start = time.perf_counter()
        for audio, text in work:
            feats = aligner.encoder(log_mel_spectrogram(audio))
            tok = aligner.tokens
            ids = [tok.audio_start, *[tok.audio_pad] * len(feats), tok.audio_end]
            slots = []
            for unit in split_words(text, "English"):
                ids += dec.tokenize(unit)
                slots += [len(ids), len(ids) + 1]
                ids += [aligner.timestamp] * 2
            emb = dec.token_embeddings(ids)
            emb[1 : 1 + len(feats)] = feats
            dec.ensure_context(len(ids))
            dec.reset()
            dec.eval_embeddings(emb, 0, slots)
            hidden = np.stack([dec.hidden(i) for i in slots])
            (hidden @ aligner.head.T).argmax(1)
        wall = time.perf_counter() - start
        dec.close()
    return {"wall_s": wall, "s_per_audio_s": wall / seconds, "peak_rss_mib": peak_rss_mib()}


def run_official(ckpt: str, seconds: float, threads: int) -> dict[str, float]:
    import torch
    from qwen_asr import Qwen3ForcedAligner
    from transformers import AutoProcessor

    torch.set_num_threads(threads)
    work = chunks(seconds)
    aligner = Qwen3ForcedAligner.from_pretrained(ckpt, dtype=torch.float32, device_map="cpu")
    aligner.processor = AutoProcessor.from_pretrained(ckpt)
    aligner.align(audio=(work[0][0][:16000], 16000), text="warm up", language="English")
    start = time.perf_counter()
    for audio, text in work:
        aligner.align(audio=(audio, 16000), text=text, language="English")
    wall = time.perf_counter() - start
    return {"wall_s": wall, "s_per_audio_s": wall / seconds, "peak_rss_mib": peak_rss_mib()}


def child(args: list[str]) -> dict[str, float]:
    result: dict[str, float] = run_child(__file__, args)
    return result


def checkpoint() -> Path:
    """The random checkpoint of the released aligner's shape (written once, cached)."""
    from realshape import write_checkpoint

    return write_checkpoint(CACHE / "ckpt-aligner", "aligner")


def prepare(encoder: str, decoder: str) -> Path:
    """The aligner's model folder of one precision pair, converted from :func:`checkpoint` once and cached."""
    from qwen_whisper_compat.convert import convert_checkpoint

    folder = CACHE / f"aligner-{decoder}-{encoder}"
    if not (folder / "manifest.json").is_file():
        convert_checkpoint(checkpoint(), folder, encoder=encoder, decoder=decoder, overwrite=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-official", action="store_true")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, seconds, threads = args.child
        run = {"ours": run_ours, "embeddings": run_embeddings_output, "official": run_official}[kind]
        print(json.dumps(run(path, float(seconds), int(threads))))
        return

    CACHE.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint()
    rows: list[dict[str, object]] = []
    common = [str(args.seconds), str(args.threads)]
    if not args.no_official:
        official = child(["official", str(ckpt), *common])
        rows.append({"config": "fp32 (torch)", "engine": "official qwen-asr", **official})
    for name, (encoder, decoder) in CONFIGS.items():
        folder = prepare(encoder, decoder)
        rows.append({"config": name, "engine": "qwen-whisper-compat", **child(["ours", str(folder), *common])})
        if name == "q8_0/int8":
            extra = child(["embeddings", str(folder), *common])
            rows.append({"config": name, "engine": "llama.cpp embeddings output (head on every row)", **extra})
        print(json.dumps(rows[-1]), file=sys.stderr)
    lines = [
        "| aligner 0.6B shape | engine | s per audio s | wall s | peak RSS MiB |",
        "|---|---|---|---|---|",
        *(
            f"| {r['config']} | {r['engine']} | {r['s_per_audio_s']:.3f} | {r['wall_s']:.1f} "
            f"| {r['peak_rss_mib']:.0f} |"
            for r in rows
        ),
    ]
    RESULTS.mkdir(exist_ok=True)
    meta = {"seconds": args.seconds, "threads": args.threads, "words_per_second": 2.5}
    (RESULTS / "aligner_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (RESULTS / "aligner_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
