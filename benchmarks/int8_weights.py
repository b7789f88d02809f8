"""Signed against unsigned int8 weights in the dynamically quantized encoder: accuracy and speed, side by side.

    python benchmarks/int8_weights.py --size 0.6b --seconds 30 --repeat 7 --threads 2

onnxruntime's dynamic quantization multiplies uint8 activations by int8 or uint8 weights. On x86 CPUs without
AVX-512 VNNI / AVX-VNNI (most AVX2 machines), its u8 x s8 kernel adds pairs of products into 16 bits with
saturation, so full-range int8 weights (per-channel QInt8) lose accuracy there and only there; u8 x u8 is
computed exactly on every CPU. Both variants are made from the same fp32 graph (random weights of the real
shape; the cost does not depend on the values), run on the same 30 s of real speech, alternated, and compared
with the fp32 graph's output. Writes benchmarks/results/int8_weights.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from realshape import write_encoder_checkpoint

RESULTS = HERE / "results"
AUDIO = HERE.parent / "tests" / "data" / "audio"


def cpu_flags() -> list[str]:
    """The CPU's int8 dot-product extensions (what decides onnxruntime's u8 x s8 kernel)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((line for line in text.splitlines() if line.startswith("flags")), "").split())
    return sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"})


def build(size: str, cache: Path) -> dict[str, Path]:
    """The fp32 encoder and its two dynamic int8 variants."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qwen_whisper_compat.convert.checkpoint import Checkpoint
    from qwen_whisper_compat.convert.onnx_encoder import build_encoder_graph
    from qwen_whisper_compat.convert.onnx_graph import save_model

    paths = {name: cache / f"{size}-int8w-{name}.onnx" for name in ("fp32", "int8_signed", "int8_unsigned")}
    if not paths["fp32"].exists():
        ckpt = Checkpoint(write_encoder_checkpoint(cache / f"encoder-ckpt-{size}", size))
        save_model(build_encoder_graph(ckpt), paths["fp32"])
    for name, weight_type in (("int8_signed", QuantType.QInt8), ("int8_unsigned", QuantType.QUInt8)):
        if not paths[name].exists():
            quantize_dynamic(
                paths["fp32"], paths[name], op_types_to_quantize=["MatMul"], per_channel=True, weight_type=weight_type
            )
    return paths


def speech_mel(seconds: float) -> np.ndarray:
    from qwen_whisper_compat.audio import load_audio
    from qwen_whisper_compat.engine.mel import log_mel_spectrogram

    clips = ["jfk.flac", "librispeech_1995-1837-0001.wav", "aishell_BAC009S0724W0121.wav", "multilingual.mp3"]
    audio = np.concatenate([load_audio(AUDIO / name) for name in clips])[: int(seconds * 16000)]
    return log_mel_spectrogram(audio)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b", "aligner"])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cache = RESULTS / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    paths = build(args.size, cache)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sessions = {name: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for name, p in paths.items()}
    mel = speech_mel(args.seconds)

    def run(name: str) -> np.ndarray:
        out = sessions[name].run(None, {"input_features": mel})[0]
        assert isinstance(out, np.ndarray)
        return out

    outputs = {name: run(name) for name in sessions}  # also the warm-up
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.repeat):  # alternated, so that machine noise hits every variant alike
        for name in sessions:
            t0 = time.perf_counter()
            run(name)
            times[name].append(time.perf_counter() - t0)
    rows = [
        {
            "size": args.size,
            "weights": name,
            "audio_s": args.seconds,
            "threads": args.threads,
            "median_s": statistics.median(times[name]),
            "min_s": min(times[name]),
            "rtf": statistics.median(times[name]) / args.seconds,
            "cosine_vs_fp32": cosine(outputs[name], outputs["fp32"]),
            "worst_row_cosine_vs_fp32": min(cosine(a, b) for a, b in zip(outputs[name], outputs["fp32"], strict=True)),
        }
        for name in sessions
    ]
    meta = {"onnxruntime": ort.__version__, "cpu_flags": cpu_flags(), "machine": platform.machine()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8_weights.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        f"onnxruntime {meta['onnxruntime']}, {meta['machine']}, CPU int8 extensions: {', '.join(meta['cpu_flags'])}",
        "",
        "| size | encoder weights | audio s | threads | median s | RTF | cosine vs fp32 | worst row |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['size']} | {r['weights']} | {r['audio_s']:.0f} | {r['threads']} | {r['median_s']:.3f} "
            f"| {r['rtf']:.4f} | {r['cosine_vs_fp32']:.5f} | {r['worst_row_cosine_vs_fp32']:.5f} |"
            for r in rows
        ),
    ]
    (RESULTS / "int8_weights.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
