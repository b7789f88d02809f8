"""Encoder precision variants with onnxruntime's own tools (fp16, dynamic int8, MatMulNBits int4).

All variants keep float32 inputs and outputs, so the runtime feeds and reads every variant the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnx

from qwen_whisper_compat.convert.onnx_graph import save_model

#: Block size of the int4 MatMulNBits weights (per-block scale and zero point).
INT4_BLOCK_SIZE = 32


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and activations; LayerNormalization stays fp32 for range, as the seed port found necessary."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load_model(str(src))
    model16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=["LayerNormalization"])
    save_model(model16, dst)


class _DropPreprocessHint(logging.Filter):
    """onnxruntime's quantizer warns on the root logger that the model was not pre-processed; ours is
    built with static shapes already and needs no symbolic shape inference."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage()


def to_int8(src: Path, dst: Path, op_types: Sequence[str] = ("MatMul",), exclude: Sequence[str] = ()) -> None:
    """Dynamic int8: MatMul weights quantized per output channel, activations quantized at run time.

    The weights are unsigned (QUInt8). onnxruntime multiplies uint8 activations by int8 weights, on x86 CPUs
    without VNNI (most AVX2 machines), with a kernel that sums pairs of products into 16 bits with saturation,
    which costs full-range int8 weights accuracy on those machines only; uint8 x uint8 is exact everywhere.
    Measured on the 0.6B encoder shape on an AVX2 machine: cosine to fp32 0.99965 against 0.99441, and 3%
    faster (benchmarks/int8_weights.py, results/int8_weights.md). ``op_types`` widens what is quantized: the
    convolution stem ("Conv") measured no faster (benchmarks/encoder_stem.py), so the converter leaves it fp32.
    Nodes named in ``exclude`` stay float32.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    hint_filter = _DropPreprocessHint()
    root.addFilter(hint_filter)
    try:
        quantize_dynamic(
            src,
            dst,
            op_types_to_quantize=list(op_types),
            per_channel=True,
            weight_type=QuantType.QUInt8,
            nodes_to_exclude=list(exclude),
            # contrib ops (GroupQueryAttention) have no ONNX shape inference: their outputs are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(hint_filter)


def to_int4(src: Path, dst: Path) -> None:
    """Weight-only int4 (MatMulNBits, asymmetric blocks of 32, int8 compute); measured on the tiny models, blocks of
    32 with a zero point keep the encoder closest to fp32 (cosine 0.957-0.976 against 0.936-0.967 for 128)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load_model(str(src))
    q = MatMulNBitsQuantizer(model, bits=4, block_size=INT4_BLOCK_SIZE, is_symmetric=False, accuracy_level=4)
    q.process()
    save_model(q.model.model, dst)


CONVERTERS = {"fp16": to_fp16, "int8": to_int8, "int4": to_int4}
