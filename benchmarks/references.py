"""Raw references of the machine a benchmark runs on, measured in the same run as the figures they bound
(issue 29): memory read bandwidth, and onnxruntime's int8 and fp32 GEMM rates at the decoder's own shapes.

    .venv/bin/python benchmarks/references.py --threads 2

* **Bandwidth**: the best of several passes of numpy summing a 1 GiB float32 array, split across ``threads``
  threads (numpy releases the GIL in the reduction). A decode step reads every weight once (and the KV cache
  so far), so bytes per token over this bandwidth bounds the decode rate.
* **GEMM**: one ``MatMul`` of an ``M x K`` activation by a constant ``K x N`` weight, in onnxruntime with
  ``threads`` intra-op threads: as built (fp32) and after the converter's own dynamic int8 quantization
  (``convert/quantize.py``'s ``to_int8``: u8 activations quantized at run time, u8 per-channel weights), the
  best of several runs. Rates are 2·M·K·N operations per second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: The 0.6B decoder's GEMMs for a 30 s chunk's prompt (830 rows): q/o-sized, MLP down, MLP gate/up, k/v-sized.
DECODER_SHAPES = ((830, 1024, 3072), (830, 3072, 1024), (830, 1024, 2048))
BANDWIDTH_BYTES = 1 << 30


def memory_bandwidth_gbs(threads: int, passes: int = 5) -> float:
    """Best read bandwidth in GB/s (1e9 bytes) over ``passes`` sums of a 1 GiB array in ``threads`` pieces."""
    data = np.ones(BANDWIDTH_BYTES // 4, dtype=np.float32)
    pieces = np.array_split(data, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(passes):
            start = time.perf_counter()
            list(pool.map(np.sum, pieces))
            best = max(best, data.nbytes / (time.perf_counter() - start) / 1e9)
    return best


def _matmul_model(k: int, n: int, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = (np.random.default_rng(0).standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "w"], ["y"])],
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def ort_gemm_gops(m: int, k: int, n: int, threads: int, int8: bool, runs: int = 7) -> float:
    """Best onnxruntime rate (1e9 operations per second) of an ``m x k`` by ``k x n`` MatMul."""
    import onnxruntime as ort

    from qwen_whisper_compat.convert.quantize import to_int8

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gemm.onnx"
        _matmul_model(k, n, path)
        if int8:
            quantized = Path(tmp) / "gemm.int8.onnx"
            to_int8(path, quantized)
            path = quantized
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).standard_normal((m, k)).astype(np.float32)
    session.run(None, {"a": a})
    best = min(_timed(session, a) for _ in range(runs))
    return 2.0 * m * k * n / best / 1e9


def _timed(session: Any, a: np.ndarray) -> float:
    start = time.perf_counter()
    session.run(None, {"a": a})
    return time.perf_counter() - start


def gemm_rates(threads: int, shapes: Sequence[tuple[int, int, int]] = DECODER_SHAPES) -> dict[str, float]:
    """onnxruntime's int8 and fp32 rates over ``shapes`` (total operations over total best time), GOPS."""
    out = {}
    for name, int8 in (("int8", True), ("fp32", False)):
        ops = sum(2.0 * m * k * n for m, k, n in shapes)
        seconds = sum(2.0 * m * k * n / (ort_gemm_gops(m, k, n, threads, int8) * 1e9) for m, k, n in shapes)
        out[f"ort_{name}_gemm_gops"] = ops / seconds / 1e9
    return out


def references(threads: int) -> dict[str, Any]:
    """Everything above, for a benchmark's results: bandwidth on 1 and ``threads`` threads, and GEMM rates."""
    return {
        "bandwidth_gbs_1_thread": memory_bandwidth_gbs(1),
        f"bandwidth_gbs_{threads}_threads": memory_bandwidth_gbs(threads),
        "gemm_shapes": [list(s) for s in DECODER_SHAPES],
        "threads": threads,
        **gemm_rates(threads),
    }


def best_of(*measured: dict[str, Any]) -> dict[str, Any]:
    """The highest of each rate over several :func:`references` (say, before and after a benchmark's runs): a
    bound is what the machine can do, and other work on a shared machine only ever lowers a measurement."""
    out = dict(measured[0])
    for key, value in out.items():
        if isinstance(value, float):
            out[key] = max(m[key] for m in measured)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    print(json.dumps(references(ap.parse_args().threads), indent=1))


if __name__ == "__main__":
    main()
