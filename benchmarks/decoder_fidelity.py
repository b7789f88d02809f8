"""Fidelity of the decoder quantizations on the tiny parity model: the official ``qwen-asr`` thinker against
our GGUF decoder at each precision, on real speech, over several random seeds.

    .venv/bin/python benchmarks/decoder_fidelity.py --seeds 0 1 2

For each seed, a tiny random checkpoint of the exact architecture (the ``asr_q4`` variant of
tests/tiny_models.py: matmul widths of 256 and 512, so that q4_k's blocks fit) is built by the official
classes and converted by our converter (fp32 encoder, each decoder precision; Q4_0 and IQ4_NL are quantized
from its f16 file by llama.cpp's quantizer, as benchmarks/decoder_quant.py does). The reference is the
official thinker in fp32: its logits at every prompt position and its greedy continuation of 32 tokens (end
of sequence ignored), with audio features from the official encoder attending in its windows. Ours gets the
same features injected into the same prompt. Clips: jfk (11 s English) and 20 s of Mandarin.

Per precision, over every seed and clip:

* worst and mean logit cosine against the official logits, over all prompt and continuation positions;
* prompt positions whose argmax equals the official one;
* teacher forced: along the official greedy path, steps whose argmax equals the official token (of 32);
* free running: greedy tokens equal to the official ones before the first difference (of 32).

Writes benchmarks/results/decoder_fidelity.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from decoder_quant import TYPES, llama_quantize
from harness import AUDIO, CACHE, write_results

STEPS = 32
CONVERTED = ("f32", "f16", "q8_0", "q4_k")  # what our converter writes itself


def checkpoint(seed: int) -> Path:
    import tiny_models  # type: ignore[import-not-found]

    folder = CACHE / f"tiny-asr_q4-fp32-{seed}"
    if not (folder / "config.json").is_file():
        tiny_models.build_checkpoint(folder, "asr_q4", "fp32", seed)
    return folder


def decoder_file(ckpt: Path, kind: str) -> Path:
    """Our decoder of ``ckpt`` at ``kind`` (converted or quantized once, cached)."""
    from qwen_whisper_compat.convert import convert_checkpoint

    base = "f16" if kind not in CONVERTED else kind
    folder = CACHE / f"fidelity-{ckpt.name}-{base}"
    if not (folder / "manifest.json").is_file():
        convert_checkpoint(ckpt, folder, encoder="fp32", decoder=base)
    if kind == base:
        return folder / f"decoder.{kind}.gguf"
    out = folder / f"decoder.{kind}.gguf"
    if not out.is_file():
        llama_quantize(folder / "decoder.f16.gguf", out, kind)
    return out


def clips() -> dict[str, np.ndarray]:
    from qwen_whisper_compat.audio import load_audio

    zh = load_audio(AUDIO / "aishell_BAC009S0724W0121.wav")
    return {"jfk": load_audio(AUDIO / "jfk.flac"), "zh20s": np.tile(zh, 5)[: 20 * 16000]}


def official_reference(official: Any, wav: np.ndarray) -> dict[str, Any]:
    """The official thinker's features, prompt ids, greedy tokens and logits along prompt + greedy path."""
    import tiny_models
    import torch

    inputs = official.processor(text=official._build_text_prompt(context="", force_language=None), audio=wav,
                                return_tensors="pt")  # fmt: skip
    model = official.model
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    n_prompt = ids.shape[1]
    tokens: list[int] = []
    with torch.no_grad(), tiny_models.windowed_reference(model):
        feats = model.thinker.get_audio_features(inputs["input_features"], inputs["feature_attention_mask"])
        for _ in range(STEPS):
            logits = model.thinker(input_ids=ids, attention_mask=mask, input_features=inputs["input_features"],
                                   feature_attention_mask=inputs["feature_attention_mask"]).logits[0]  # fmt: skip
            tokens.append(int(logits[-1].argmax()))
            ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], 1)
            mask = torch.cat([mask, torch.ones(1, 1, dtype=mask.dtype)], 1)
    # the last forward saw the prompt and the first STEPS - 1 greedy tokens: every position compared
    return {"feats": feats.numpy(), "n_prompt": n_prompt, "tokens": tokens, "logits": logits.numpy()}


def ours(path: Path, tokens_table: Any, ref: dict[str, Any]) -> dict[str, Any]:
    from qwen_whisper_compat.engine.decoder import GGUFDecoder
    from qwen_whisper_compat.engine.prompt import asr_prompt

    feats, n_prompt, expected = ref["feats"], ref["n_prompt"], ref["tokens"]
    with GGUFDecoder(path, n_ctx=n_prompt + STEPS + 16, exact=path.name == "decoder.f32.gguf") as dec:
        prompt = asr_prompt(tokens_table, dec.tokenize, len(feats))
        if len(prompt.ids) != n_prompt:
            raise RuntimeError(f"our prompt has {len(prompt.ids)} tokens, the official one {n_prompt}")
        ids = [*prompt.ids, *expected[:-1]]
        emb = dec.token_embeddings(ids)
        emb[prompt.audio_offset : prompt.audio_offset + len(feats)] = feats
        dec.eval_embeddings(emb, 0, range(len(ids)))
        logits = np.stack([dec.logits(i) for i in range(len(ids))])
        dec.reset()
        dec.eval_embeddings(emb[:n_prompt], 0, [n_prompt - 1])
        token, pos, free = int(dec.logits(n_prompt - 1).argmax()), n_prompt, []
        for _ in range(STEPS):
            free.append(token)
            dec.eval_tokens([token], pos, [0])
            token, pos = int(dec.logits(0).argmax()), pos + 1
    return {"logits": logits, "free": free}


def compare(mine: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    a, b = mine["logits"].astype(np.float64), ref["logits"].astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    n = ref["n_prompt"]
    top = a.argmax(1) == b.argmax(1)
    expected = ref["tokens"]
    free = next((i for i, (x, y) in enumerate(zip(mine["free"], expected, strict=True)) if x != y), STEPS)
    return {
        "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
        "prompt_argmax_equal": float(top[:n].mean()),
        "forced_equal": int((a[n - 1 :].argmax(1) == np.array(expected)).sum()),
        "free_equal": free,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--types", nargs="+", default=["f32", *TYPES], choices=["f32", *TYPES])
    args = ap.parse_args()
    import logging

    from qwc_fixtures import load_official  # type: ignore[import-not-found]
    from qwen_asr import Qwen3ASRModel  # type: ignore[import-untyped]

    from qwen_whisper_compat.engine.modeldir import load_model_dir

    logging.basicConfig(level=logging.WARNING)
    audio = clips()
    per: dict[str, list[dict[str, float]]] = {kind: [] for kind in args.types}
    for seed in args.seeds:
        ckpt = checkpoint(seed)
        official = load_official(Qwen3ASRModel, ckpt)
        table = load_model_dir(decoder_file(ckpt, "f32").parent).manifest.tokens
        for name, wav in audio.items():
            ref = official_reference(official, wav)
            for kind in args.types:
                per[kind].append(compare(ours(decoder_file(ckpt, kind), table, ref), ref))
                print(seed, name, kind, per[kind][-1], file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for kind, runs in per.items():
        rows.append({
            "type": kind, "runs": len(runs), "cos_min": min(r["cos_min"] for r in runs),
            "cos_mean": statistics.mean(r["cos_mean"] for r in runs),
            "prompt_argmax_equal": statistics.mean(r["prompt_argmax_equal"] for r in runs),
            "forced_equal": sum(r["forced_equal"] for r in runs), "forced_of": STEPS * len(runs),
            "free_equal_min": min(r["free_equal"] for r in runs),
            "free_equal_mean": statistics.mean(r["free_equal"] for r in runs),
            "per_run": runs,
        })  # fmt: skip
    lines = [
        (
            "| decoder | worst logit cosine | mean logit cosine | prompt argmax equal | teacher-forced tokens equal "
            f"| free-running tokens equal before the first difference (of {STEPS}): worst / mean |"
        ),
        "|---|---|---|---|---|---|",
        *(
            f"| {r['type']} | {r['cos_min']:.6f} | {r['cos_mean']:.6f} | {100 * r['prompt_argmax_equal']:.1f} % "
            f"| {r['forced_equal']} of {r['forced_of']} | {r['free_equal_min']} / {r['free_equal_mean']:.1f} |"
            for r in rows
        ),
    ]
    meta = {"seeds": args.seeds, "clips": list(audio), "steps": STEPS, "variant": "asr_q4",
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    write_results("decoder_fidelity", meta, rows, "\n".join(lines))


if __name__ == "__main__":
    main()
