"""Qwen3-ASR on the other CPU engines, side by side with ours: the same random 0.6B checkpoint, the same
60 s of speech, the same number of generated tokens, the same thread count.

    .venv/bin/python benchmarks/peers.py --crispasr-repo DIR --transcribe-cpp-repo DIR \\
        --qwen3-asr-onnx-repo DIR [--ggml-repo DIR] --repeat 3 --threads 2

The peers:

* CrispASR (PyPI ``crispasr``, ggml): its converter ``models/convert-qwen3-asr-to-gguf.py`` and its
  quantizer ``examples/crispasr-quantize`` (not in the wheel: built here against ggml-base, from the
  repository's ``ggml`` submodule or from ``--ggml-repo`` when the submodule is not checked out), q4_k
  (the quantizer keeps the audio encoder at Q8_0);
* transcribe.cpp (PyPI ``transcribe-cpp`` + ``transcribe-cpp-native``, ggml): its converter
  ``scripts/convert-qwen3_asr.py`` and ``transcribe-quantize`` (not in the wheel: built here from the
  ``transcribe-cpp-native`` source distribution of the same version), Q4_K_M;
* sherpa-onnx (PyPI ``sherpa-onnx``, onnxruntime): the Qwen3-ASR export its model releases are made with,
  ``export_qwen3_asr_onnx.py`` of Wasser1462/Qwen3-ASR-onnx (named by sherpa-onnx's
  ``.github/workflows/upload-models.yaml``), which also writes the int8 encoder and decoder.

The repositories are the user's checkouts, passed by path; nothing of theirs is copied into this one. The
peers' packages and the converters' dependencies go into their own venv (``results/cache/peers/venv``, pinned
in ``PEER_PINS``); every prepared file is cached there.

The checkpoint is ``harness.checkpoint("0.6b")`` rewritten in bfloat16 (the released dtype, which
transcribe.cpp's converter requires) with ``tie_word_embeddings`` also on ``thinker_config`` (where
CrispASR's converter looks for it); every engine, ours included, is converted from that folder.

Token counts: random weights never end a transcript by themselves, and no peer can ignore the end of
sequence, so each side is capped at the same total, ``--tokens`` (256: transcribe.cpp's smallest cap), and
each child asserts that exactly that many were generated:

* ours: greedy, ``ignore_eos``, ``max_new_tokens`` = half per chunk, the cut at the quietest point within
  0.5 s of 30 s (the default 5 s search would make three chunks of this file);
* CrispASR: greedy, two 30 s calls (its own default chunk length) of ``set_max_new_tokens`` = half each;
* transcribe.cpp: greedy, one pass over the 60 s (it does not chunk), the cap set by the context size
  (``n_ctx`` = prompt + tokens), its repetition guard off (``TRANSCRIBE_NO_REPETITION_GUARD``);
* sherpa-onnx: one pass (it does not chunk), ``max_new_tokens``; sampled at temperature 1 with top-p 1
  (no sorting), because its greedy decoding stops any run whose last 64 tokens hold 3 or fewer distinct ids,
  which random weights always do, and no option turns that check off.

Each run is one fresh process that loads the model (timed apart) and transcribes the file once; runs
alternate between the engines; figures are medians; peak RSS is the process's high-water mark.
Writes benchmarks/results/peers.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import CACHE, alternated_runs, medians, peak_rss_mib, run_child, write_results

WORK = CACHE / "peers"
VENV = WORK / "venv"
SECONDS = 60.0
TOKENS = 256
#: The peers' runtimes, and what their converters import.
PEER_PINS = (
    "crispasr==0.8.45",
    "transcribe-cpp==0.4.1",
    "transcribe-cpp-native==0.4.1",
    "sherpa-onnx==2.0.1",
    "torch==2.13.0",
    "transformers==4.57.6",
    "gguf==0.18.0",
    "safetensors==0.7.0",
    "librosa==0.11.0",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "scipy",
    "numpy",
    "cmake",
    "ninja",
)
OURS = {"ours q8_0/int8 (default)": ("int8", "q8_0"), "ours q4_k/int8": ("int8", "q4_k")}
PEERS = ("CrispASR", "transcribe.cpp", "sherpa-onnx")


# ---- preparation (parent process) --------------------------------------------------------------------------


def sh(cmd: list[str | Path], log: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run one preparation step, its output in ``WORK/logs/LOG.log``; a failure shows the log's tail."""
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{log}.log"
    print(f"[peers] {log}: {' '.join(map(str, cmd))}", file=sys.stderr)
    start = time.perf_counter()
    with path.open("w") as out:
        proc = subprocess.run(list(map(str, cmd)), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"[peers] {log} failed (status {proc.returncode}), see {path}:\n{tail}")
    print(f"[peers] {log}: {time.perf_counter() - start:.0f} s", file=sys.stderr)


def tool_env() -> dict[str, str]:
    """The environment of the peers' tools: their venv's ``bin`` (cmake, ninja) first."""
    return {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def peer_python() -> Path:
    python = VENV / "bin" / "python"
    marker = VENV / "peer-pins.txt"
    if not (python.is_file() and marker.is_file() and marker.read_text() == "\n".join(PEER_PINS)):
        sh([sys.executable, "-m", "venv", "--clear", VENV], "venv")
        sh([python, "-m", "pip", "install", "-q", *PEER_PINS], "pip-install")
        marker.write_text("\n".join(PEER_PINS))
    return python


def bf16_checkpoint() -> Path:
    """``harness.checkpoint("0.6b")`` with its tensors in bfloat16 (round to nearest even), written with
    the safetensors layout by hand (numpy has no bfloat16), and the tie flag also on ``thinker_config``."""
    from harness import checkpoint
    from safetensors import safe_open

    out = WORK / "ckpt-0.6b-bf16"
    if (out / "config.json").is_file():
        return out
    src = checkpoint("0.6b")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with safe_open(str(src / "model.safetensors"), "np") as f:
        names = sorted(f.keys())
        header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name in names:
            shape = list(f.get_slice(name).get_shape())
            size = 2 * int(np.prod(shape))
            header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)
        with (tmp / "model.safetensors").open("wb") as w:
            w.write(struct.pack("<Q", len(blob)) + blob)
            for name in names:
                bits = np.ascontiguousarray(f.get_tensor(name), dtype=np.float32).view(np.uint32)
                w.write(((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes())
    for item in src.iterdir():
        if item.name not in ("model.safetensors", "config.json"):
            shutil.copy2(item, tmp / item.name)
    config = json.loads((src / "config.json").read_text())
    config["thinker_config"]["tie_word_embeddings"] = config["thinker_config"]["text_config"]["tie_word_embeddings"]
    config["torch_dtype"] = "bfloat16"
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    tmp.rename(out)
    return out


def prepare_ours(ckpt: Path) -> dict[str, Path]:
    from qwen_whisper_compat.convert import convert_checkpoint

    folders = {}
    for name, (encoder, decoder) in OURS.items():
        out = WORK / f"ours-{decoder}-{encoder}"
        if not (out / "manifest.json").is_file():
            print(f"[peers] converting ours {decoder}/{encoder}", file=sys.stderr)
            convert_checkpoint(ckpt, out, encoder=encoder, decoder=decoder, overwrite=True)
        folders[name] = out
    return folders


def prepare_crispasr(python: Path, ckpt: Path, repo: Path, ggml_repo: Path | None) -> Path:
    work = WORK / "crispasr"
    f16, q4k = work / "qwen3-asr-0.6b-f16.gguf", work / "qwen3-asr-0.6b-q4_k.gguf"
    quantize = work / "bin" / "crispasr-quantize"
    work.mkdir(parents=True, exist_ok=True)
    if q4k.is_file():
        return q4k
    if not f16.is_file():
        part = f16.with_suffix(".part")
        sh([python, repo / "models" / "convert-qwen3-asr-to-gguf.py", "--input", ckpt, "--output", part],
           "crispasr-convert")  # fmt: skip
        part.rename(f16)
    if not quantize.is_file():
        ggml = repo / "ggml" if (repo / "ggml" / "CMakeLists.txt").is_file() else ggml_repo
        if ggml is None:
            raise SystemExit(
                "CrispASR's ggml submodule is not checked out: pass --ggml-repo (github.com/ggml-org/ggml)"
            )
        build = work / "ggml-build"
        sh(["cmake", "-S", ggml, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON",
            "-DBUILD_SHARED_LIBS=OFF", "-DGGML_BUILD_TESTS=OFF", "-DGGML_BUILD_EXAMPLES=OFF", "-DGGML_OPENMP=OFF"],
           "crispasr-ggml-configure", env=tool_env())  # fmt: skip
        sh(["cmake", "--build", build, "-j2", "--target", "ggml-base"], "crispasr-ggml-build", env=tool_env())
        quantize.parent.mkdir(exist_ok=True)
        examples = repo / "examples"
        sh(["g++", "-O2", "-std=c++17", f"-I{ggml / 'include'}", f"-I{examples}",
            examples / "crispasr-quantize" / "main.cpp", examples / "common-ggml.cpp", "-o", quantize,
            build / "src" / "libggml-base.a", "-lpthread", "-lm"], "crispasr-quantize-build")  # fmt: skip
    part = q4k.with_suffix(".part")
    sh([quantize, f16, part, "q4_k"], "crispasr-quantize")
    part.rename(q4k)
    return q4k


def prepare_transcribe_cpp(python: Path, ckpt: Path, repo: Path) -> Path:
    work = WORK / "transcribe-cpp"
    bf16, q4km = work / "Qwen3-ASR-0.6B-BF16.gguf", work / "Qwen3-ASR-0.6B-Q4_K_M.gguf"
    quantize = work / "build" / "bin" / "transcribe-quantize"
    work.mkdir(parents=True, exist_ok=True)
    if q4km.is_file():
        return q4km
    if not bf16.is_file():
        part = work / "convert.part.gguf"  # the converter reads the model variant from the file name or --repo-id
        sh([python, repo / "scripts" / "convert-qwen3_asr.py", ckpt, part, "--repo-id", "Qwen/Qwen3-ASR-0.6B"],
           "transcribe-cpp-convert", cwd=repo)  # fmt: skip
        part.rename(bf16)
    if not quantize.is_file():
        version = next(p for p in PEER_PINS if p.startswith("transcribe-cpp-native==")).split("==")[1]
        sdist = work / "sdist"
        sh([python, "-m", "pip", "download", f"transcribe-cpp-native=={version}", "--no-binary", ":all:",
            "--no-deps", "-d", sdist], "transcribe-cpp-sdist")  # fmt: skip
        with tarfile.open(next(sdist.glob("transcribe_cpp_native-*.tar.gz"))) as tar:
            tar.extractall(sdist, filter="data")
        source = next(p for p in sdist.iterdir() if p.is_dir())
        sh(["cmake", "-S", source, "-B", work / "build", "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
            "-DTRANSCRIBE_BUILD_TOOLS=ON", "-DTRANSCRIBE_BUILD_TESTS=OFF", "-DTRANSCRIBE_BUILD_EXAMPLES=OFF"],
           "transcribe-cpp-configure", env=tool_env())  # fmt: skip
        sh(["cmake", "--build", work / "build", "-j2", "--target", "transcribe-quantize"], "transcribe-cpp-build",
           env=tool_env())  # fmt: skip
    part = work / "quantize.part.gguf"
    sh([quantize, bf16, part, "--quant", "Q4_K_M"], "transcribe-cpp-quantize")
    part.rename(q4km)
    return q4km


def prepare_sherpa(python: Path, ckpt: Path, repo: Path) -> Path:
    out = WORK / "sherpa-onnx"
    if (out / "decoder.int8.onnx").is_file():
        return out
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    sh([python, "export_qwen3_asr_onnx.py", "--model", ckpt, "--outdir", part, "--device", "cpu",
        "--max-total-len", "512"], "sherpa-onnx-export", cwd=repo, env={**tool_env(), "OMP_NUM_THREADS": "2"})  # fmt: skip
    for leftover in [*part.glob("onnx__*"), *part.glob("thinker.model.*")]:  # external-data scraps of the export
        leftover.unlink()
    (part / "tokenizer").mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy2(ckpt / name, part / "tokenizer" / name)
    part.rename(out)
    return out


def speech_wav() -> Path:
    """The 60 s of speech every engine reads, as 16 kHz mono PCM16."""
    from harness import speech

    path = WORK / "speech60.wav"
    if not path.is_file():
        pcm = np.clip(np.round(speech(SECONDS) * 32768), -32768, 32767).astype("<i2")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())
    return path


# ---- the runs (child processes) ----------------------------------------------------------------------------


def read_wav(path: str) -> np.ndarray:
    with wave.open(path) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def run_ours(model: str, audio: np.ndarray, threads: int, tokens: int) -> dict[str, Any]:
    from harness import options

    from qwen_whisper_compat.engine.pipeline import Transcriber

    start = time.perf_counter()
    with Transcriber(model, threads=threads) as t:
        load = time.perf_counter() - start
        opts = dataclasses.replace(options(), max_new_tokens=tokens // 2, search_seconds=0.5)  # two chunks
        start = time.perf_counter()
        results = t.transcribe(audio, opts)
        wall = time.perf_counter() - start
    # the tokens chosen (llama.cpp's eval counter leaves out each chunk's last one, never evaluated)
    generated = sum(len(r.tokens) for r in results)
    return {"load_s": load, "wall_s": wall, "tokens": generated, "calls": len(results)}


def run_crispasr(model: str, audio: np.ndarray, threads: int, tokens: int) -> dict[str, Any]:
    import crispasr  # type: ignore[import-not-found]  # in the peers' venv

    start = time.perf_counter()
    session = crispasr.Session(model, n_threads=threads, use_gpu=False)
    load = time.perf_counter() - start
    session.set_max_new_tokens(tokens // 2)
    count = [0]
    session.set_token_callback(lambda _raw, _index: count.__setitem__(0, count[0] + 1))
    piece = 30 * 16000
    start = time.perf_counter()
    for begin in range(0, len(audio), piece):
        session.transcribe(audio[begin : begin + piece], 16000)
    wall = time.perf_counter() - start
    session.close()
    return {"load_s": load, "wall_s": wall, "tokens": count[0], "calls": -(-len(audio) // piece)}


def run_transcribe_cpp(model: str, audio: np.ndarray, threads: int, tokens: int) -> dict[str, Any]:
    os.environ["TRANSCRIBE_NO_REPETITION_GUARD"] = "1"  # read once, at the first run
    import transcribe_cpp as tc  # type: ignore[import-not-found]  # in the peers' venv

    logs: list[str] = []
    tc.set_log_callback(lambda _level, message: logs.append(message))
    pcm = audio.astype(np.float32)
    start = time.perf_counter()
    loaded = tc.Model(model, backend="cpu")
    # the context that leaves room for exactly its minimum of 256 generated tokens, from its own refusal
    with loaded.session(n_threads=threads, n_ctx=tokens + 1) as probe:
        try:
            probe.run(pcm)
        except tc.InputTooLong:
            pass
    need = int(re.findall(r"\(need (\d+)\)", " ".join(logs))[-1])
    session = loaded.session(n_threads=threads, n_ctx=need - 256 + tokens)
    load = time.perf_counter() - start
    mark = len(logs)
    start = time.perf_counter()
    try:
        session.run(pcm)
    except tc.OutputTruncated:  # what reaching the cap raises
        pass
    wall = time.perf_counter() - start
    generated = re.findall(r"output truncated at (\d+) tokens", " ".join(logs[mark:]))
    return {"load_s": load, "wall_s": wall, "tokens": int(generated[-1]) if generated else -1, "calls": 1}


def run_sherpa(model: str, audio: np.ndarray, threads: int, tokens: int) -> dict[str, Any]:
    import sherpa_onnx  # type: ignore[import-not-found]  # in the peers' venv

    d = Path(model)
    start = time.perf_counter()
    recognizer = sherpa_onnx.OfflineRecognizer.from_qwen3_asr(
        conv_frontend=str(d / "conv_frontend.onnx"), encoder=str(d / "encoder.int8.onnx"),
        decoder=str(d / "decoder.int8.onnx"), tokenizer=str(d / "tokenizer"), num_threads=threads,
        max_total_len=int(13 * len(audio) / 16000) + 64 + tokens,  # 13 audio rows per second + prompt + output
        max_new_tokens=tokens, temperature=1.0, top_p=1.0, seed=42,
    )  # fmt: skip
    load = time.perf_counter() - start
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, audio)
    start = time.perf_counter()
    recognizer.decode_stream(stream)
    wall = time.perf_counter() - start
    return {"load_s": load, "wall_s": wall, "tokens": len(stream.result.tokens), "calls": 1}


RUNNERS = {"ours": run_ours, "CrispASR": run_crispasr, "transcribe.cpp": run_transcribe_cpp, "sherpa-onnx": run_sherpa}


def child(args: list[str]) -> dict[str, Any]:
    engine, model, wav, threads, tokens = args
    result = RUNNERS[engine](model, read_wav(wav), int(threads), int(tokens))
    if result["tokens"] != int(tokens):
        raise RuntimeError(f"{engine} generated {result['tokens']} tokens, not the {tokens} forced on every engine")
    return {**result, "peak_rss_mib": peak_rss_mib()}


# ---- the comparison ----------------------------------------------------------------------------------------


def versions(python: Path, repos: dict[str, Path | None]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
        "['crispasr', 'transcribe-cpp', 'transcribe-cpp-native', 'sherpa-onnx']}))"
    )
    found: dict[str, str] = json.loads(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    for name, repo in repos.items():
        if repo is not None:
            rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
            found[f"{name} repository"] = rev.stdout.strip() or "(not a git checkout)"
    return found


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        (
            f"{meta['audio_s']:.0f} s of speech, {meta['tokens']} generated tokens on every engine, {meta['threads']} "
            f"threads, medians of {meta['repeat']} alternated runs, {meta['date']}"
        ),
        "",
        "| engine | weights | tokens forced by | transcribe s | RTF | slower than ours q4_k | load s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = next(r["wall_s"] for r in rows if r["engine"] == "ours q4_k/int8")
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['weights']} | {r['forced_by']} | {r['wall_s']:.1f} | {r['wall_s'] / meta['audio_s']:.3f} "
            f"| {r['wall_s'] / base:.2f}x | {r['load_s']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


WEIGHTS = {
    "ours q8_0/int8 (default)": "decoder q8_0, encoder int8 (onnxruntime)",
    "ours q4_k/int8": "decoder q4_k, encoder int8 (onnxruntime)",
    "CrispASR": "q4_k, audio encoder Q8_0, conv stem F16",
    "transcribe.cpp": "Q4_K_M",
    "sherpa-onnx": "int8 decoder and encoder, fp32 conv stem (onnxruntime)",
}
FORCED_BY = {
    "ours": "ignore_eos, {half} per 30 s chunk (cut within 0.5 s of 30 s)",
    "CrispASR": "set_max_new_tokens({half}) per 30 s call",
    "transcribe.cpp": "n_ctx = prompt + {total}, one pass",
    "sherpa-onnx": "max_new_tokens={total}, one pass, sampled (T=1, top-p 1)",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crispasr-repo", type=Path, help="a checkout of github.com/CrispStrobe/CrispASR")
    ap.add_argument("--ggml-repo", type=Path, help="github.com/ggml-org/ggml, if CrispASR's submodule is absent")
    ap.add_argument("--transcribe-cpp-repo", type=Path, help="a checkout of github.com/handy-computer/transcribe.cpp")
    ap.add_argument("--qwen3-asr-onnx-repo", type=Path, help="a checkout of github.com/Wasser1462/Qwen3-ASR-onnx")
    ap.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=TOKENS, help="generated tokens on every engine (even, >= 256)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    if args.tokens < 256 or args.tokens % 2:
        ap.error("--tokens must be even and at least 256 (transcribe.cpp's smallest cap)")
    needs = {"CrispASR": args.crispasr_repo, "transcribe.cpp": args.transcribe_cpp_repo,
             "sherpa-onnx": args.qwen3_asr_onnx_repo}  # fmt: skip
    for peer in args.peers:
        if needs[peer] is None or not needs[peer].is_dir():
            ap.error(f"{peer} needs its repository checkout (see --help), or leave it out with --peers")
    python = peer_python()
    ckpt = bf16_checkpoint()
    wav = speech_wav()
    engines: dict[str, tuple[str, Path, Path]] = {
        name: ("ours", folder, Path(sys.executable)) for name, folder in prepare_ours(ckpt).items()
    }
    if "CrispASR" in args.peers:
        engines["CrispASR"] = ("CrispASR", prepare_crispasr(python, ckpt, args.crispasr_repo, args.ggml_repo), python)
    if "transcribe.cpp" in args.peers:
        engines["transcribe.cpp"] = ("transcribe.cpp", prepare_transcribe_cpp(python, ckpt, args.transcribe_cpp_repo),
                                     python)  # fmt: skip
    if "sherpa-onnx" in args.peers:
        engines["sherpa-onnx"] = ("sherpa-onnx", prepare_sherpa(python, ckpt, args.qwen3_asr_onnx_repo), python)
    names = list(engines)

    def measure(name: str) -> dict[str, Any]:
        kind, model, exe = engines[name]
        result: dict[str, Any] = run_child(__file__, [kind, str(model), str(wav), str(args.threads),
                                                      str(args.tokens)], python=str(exe))  # fmt: skip
        print(f"[peers] {name}: {json.dumps(result)}", file=sys.stderr)
        return result

    runs = alternated_runs(names, args.repeat, measure)
    rows = [
        {
            "engine": name,
            "weights": WEIGHTS[name],
            "forced_by": FORCED_BY[engines[name][0]].format(half=args.tokens // 2, total=args.tokens),
            **medians(runs[name], ("load_s", "wall_s", "peak_rss_mib")),
            "tokens": runs[name][0]["tokens"],
            "calls": runs[name][0]["calls"],
            "runs": runs[name],
        }
        for name in names
    ]
    meta = {
        "audio_s": SECONDS, "tokens": args.tokens, "threads": args.threads, "repeat": args.repeat,
        "date": time.strftime("%Y-%m-%d"), "versions": versions(python, {
            "CrispASR": args.crispasr_repo, "ggml": args.ggml_repo, "transcribe.cpp": args.transcribe_cpp_repo,
            "Qwen3-ASR-onnx": args.qwen3_asr_onnx_repo}),
    }  # fmt: skip
    write_results("peers", meta, rows, table(rows, meta))


if __name__ == "__main__":
    main()
