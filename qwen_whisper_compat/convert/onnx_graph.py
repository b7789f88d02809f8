"""Building ONNX graphs node by node with ``onnx.helper``: the one helper the encoder and aligner graphs share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: LayerNormalization epsilon of the audio encoder.
LN_EPS = 1e-5


class GraphBuilder:
    """Nodes and initializers of one graph under construction: every op returns the name of its single output."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def init(self, name: str, arr: np.ndarray) -> str:
        # np.ascontiguousarray would turn 0-d scalars into 1-d arrays
        self.initializers.append(numpy_helper.from_array(np.array(arr, order="C", copy=True), name))
        return name

    def const_i64(self, values: list[int] | int, hint: str = "c") -> str:
        arr = np.array(values, dtype=np.int64)
        return self.init(self._name(hint), arr)

    def const_f32(self, value: float, hint: str = "f") -> str:
        return self.init(self._name(hint), np.array(value, dtype=np.float32))

    def op(self, op_type: str, *inputs: str, hint: str | None = None, **attrs: Any) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def split(self, x: str, sizes: list[int], axis: int = -1, hint: str = "split") -> list[str]:
        """``x`` cut into pieces of ``sizes`` along ``axis``: the one op with several outputs."""
        outs = [self._name(f"{hint}{i}") for i in range(len(sizes))]
        node = helper.make_node("Split", [x, self.const_i64(sizes)], outs, name=outs[0], axis=axis)
        self.nodes.append(node)
        return outs

    # composite helpers ------------------------------------------------------------------------------
    def gelu(self, x: str) -> str:
        # exact GELU = 0.5 * x * (1 + erf(x / sqrt(2))); onnxruntime fuses this pattern into Gelu.
        e = self.op("Erf", self.op("Div", x, self.const_f32(math.sqrt(2.0))))
        return self.op("Mul", self.op("Mul", x, self.const_f32(0.5)), self.op("Add", e, self.const_f32(1.0)))

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray | None, name: str) -> str:
        """x @ weight.T (+ bias); weights stored as [in, out] so quantizers see a constant MatMul B."""
        y = self.op("MatMul", x, self.init(name + ".weight_t", weight.T.astype(np.float32)), hint=name)
        if bias is not None:
            y = self.op("Add", y, self.init(name + ".bias", bias.astype(np.float32)), hint=name + "_b")
        return y

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        return self.op(
            "LayerNormalization",
            x,
            self.init(name + ".weight", w),
            self.init(name + ".bias", b),
            axis=-1,
            epsilon=LN_EPS,
            hint=name,
        )

    def scalar(self, shape_of: str, index: int) -> str:
        """Dimension ``index`` of tensor ``shape_of`` as an int64 scalar."""
        return self.op("Gather", self.op("Shape", shape_of), self.const_i64(index), axis=0)

    def vec(self, *scalars: str) -> str:
        """Concatenate int64 scalars into a 1-D shape vector."""
        axes = self.const_i64([0])
        return self.op("Concat", *[self.op("Unsqueeze", s, axes) for s in scalars], axis=0)

    def ceil_div(self, a: str, b: str) -> str:
        one = self.const_i64(1)
        return self.op("Div", self.op("Sub", self.op("Add", a, b), one), b)


#: Graphs whose weights pass this size keep them in a ``<file>.data`` file beside the graph, as a protobuf
#: message cannot exceed 2 GiB. Every graph the converter writes stays below it (the largest, the aligner's fp32
#: decoder at 0.6B, holds 1.78 GB), so a model folder's graphs are single files.
EXTERNAL_DATA_BYTES = 1_900_000_000


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` as one file, or with its weights in ``<name>.data`` past :data:`EXTERNAL_DATA_BYTES`."""
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    if size <= EXTERNAL_DATA_BYTES:
        onnx.save_model(model, str(path))
        return
    onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=1024)
