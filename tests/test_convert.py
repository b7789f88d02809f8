"""The converter on the tiny official checkpoints: every precision, file formats, tokenizer, torch-free."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import onnx
import pytest
from safetensors.numpy import load_file

from qwen_whisper_compat.engine.gguf_file import GGUFIndex
from qwen_whisper_compat.engine.modeldir import load_model_dir


def _reader(path: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(str(path))  # slow (~9 s: parses the whole vocabulary); only where arrays are needed


@pytest.fixture(scope="module")
def f16_reader(asr_ckpt: Path, converted: Callable[..., Path]) -> gguf.GGUFReader:
    return _reader(load_model_dir(converted(asr_ckpt, "fp32", "f16")).file_path("decoder"))


def _field(reader: gguf.GGUFReader, key: str):  # type: ignore[no-untyped-def]
    return reader.fields[key].contents()


@pytest.mark.parametrize("encoder", ["fp32", "fp16", "int8", "int4"])
def test_encoder_precisions_use_the_expected_onnx_ops(
    asr_ckpt: Path, converted: Callable[..., Path], encoder: str
) -> None:
    model_dir = load_model_dir(converted(asr_ckpt, encoder, "f16"))
    entry = model_dir.manifest.file("encoder")
    assert (entry.path, entry.precision) == (f"encoder.{encoder}.onnx", encoder)
    model = onnx.load(str(model_dir.file_path("encoder")))
    ops = {n.op_type for n in model.graph.node}
    init_types = {i.data_type for i in model.graph.initializer}
    if encoder == "fp32":
        assert "MatMul" in ops and onnx.TensorProto.FLOAT16 not in init_types
    elif encoder == "fp16":
        assert onnx.TensorProto.FLOAT16 in init_types
    elif encoder == "int8":
        assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops
    else:
        assert "MatMulNBits" in ops
    # the runtime feeds every variant float32 in, float32 out
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize(
    ("variant", "decoder", "weight_types"),
    [
        ("asr", "f32", {gguf.GGMLQuantizationType.F32}),
        ("asr", "f16", {gguf.GGMLQuantizationType.F16}),
        ("asr", "q8_0", {gguf.GGMLQuantizationType.Q8_0}),
        pytest.param(
            "asr_q4", "q4_k", {gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q6_K}, marks=pytest.mark.slow
        ),
    ],
)
def test_decoder_precisions(
    tiny_checkpoint: Callable[..., Path],
    converted: Callable[..., Path],
    variant: str,
    decoder: str,
    weight_types: set[gguf.GGMLQuantizationType],
) -> None:
    model_dir = load_model_dir(converted(tiny_checkpoint(variant), "fp32", decoder))
    assert model_dir.manifest.file("decoder").precision == decoder
    tensors = GGUFIndex(model_dir.file_path("decoder")).tensors.values()
    matrices = {t.ggml_type for t in tensors if len(t.shape) == 2 and t.name != "token_embd.weight"}
    assert matrices == weight_types
    norms = {t.ggml_type for t in tensors if len(t.shape) == 1}
    assert norms == {gguf.GGMLQuantizationType.F32}


def test_asr_gguf_metadata_and_tokenizer(
    asr_ckpt: Path, converted: Callable[..., Path], f16_reader: gguf.GGUFReader
) -> None:
    model_dir = load_model_dir(converted(asr_ckpt, "fp32", "f16"))
    reader = f16_reader
    assert _field(reader, "general.architecture") == "qwen3"
    # head_dim (32) differs from hidden / heads (64 / 4 = 16): key_length must be explicit
    assert _field(reader, "qwen3.attention.key_length") == 32
    assert _field(reader, "qwen3.attention.value_length") == 32
    assert _field(reader, "qwen3.attention.head_count_kv") == 2
    assert _field(reader, "qwen3.rope.freq_base") == pytest.approx(1e6)
    assert _field(reader, "tokenizer.ggml.model") == "gpt2"
    assert _field(reader, "tokenizer.ggml.pre") == "qwen2"
    assert _field(reader, "tokenizer.ggml.eos_token_id") == 151645
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == 151936
    assert tokens[151704] == "<asr_text>" and types[151704] == gguf.TokenType.USER_DEFINED
    assert tokens[151645] == "<|im_end|>" and types[151645] == gguf.TokenType.CONTROL
    assert tokens[151676] == "<|audio_pad|>" and types[151676] == gguf.TokenType.CONTROL
    assert tokens[151705] == "[PAD151705]" and types[151705] == gguf.TokenType.UNUSED
    names = {t.name for t in reader.tensors}
    assert "output.weight" not in names  # tied: llama.cpp reuses token_embd
    tok = model_dir.manifest.tokens
    assert (tok.audio_start, tok.audio_end, tok.audio_pad, tok.asr_text) == (151669, 151670, 151676, 151704)
    assert tok.eos == (151645, 151643) and tok.timestamp is None


def test_aligner_folder_has_no_padded_head(aligner_ckpt: Path, converted: Callable[..., Path]) -> None:
    model_dir = load_model_dir(converted(aligner_ckpt, "int8", "q8_0"), kind="aligner")
    manifest = model_dir.manifest
    assert manifest.kind == "aligner" and manifest.timestamp_segment_ms == 80
    assert manifest.decoder.classify_num == 5000 and manifest.tokens.timestamp == 151705
    index = GGUFIndex(model_dir.file_path("decoder"))
    assert "output.weight" not in index.tensors
    assert index.tensors["token_embd.weight"].shape == (64, 152064)  # embedding rows, not a padded head
    assert all(max(t.shape) <= 152064 for t in index.tensors.values())
    head = np.load(model_dir.file_path("timestamp_head"))
    assert head.shape == (5000, 64) and head.dtype == np.float32
    source = load_file(str(aligner_ckpt / "model.safetensors"))["thinker.lm_head.weight"]
    np.testing.assert_array_equal(head, source.astype(np.float32))


def test_manifest_records_source_hashes_and_dimensions(asr_ckpt: Path, converted: Callable[..., Path]) -> None:
    import hashlib

    manifest = load_model_dir(converted(asr_ckpt)).manifest
    digest = hashlib.sha256((asr_ckpt / "model.safetensors").read_bytes()).hexdigest()
    assert manifest.source.files == {"model.safetensors": digest}
    assert manifest.encoder.d_model == 64 and manifest.encoder.window_tokens == 104
    assert manifest.encoder.output_length(250) == 33 and manifest.encoder.output_length(300) == 39
    assert manifest.decoder.head_dim == 32 and manifest.decoder.tie_word_embeddings
    assert manifest.languages[:2] == ("Chinese", "English")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["vocab+merges", "tokenizer.json"])
def test_both_tokenizer_layouts_give_the_same_vocabulary(
    asr_ckpt: Path, f16_reader: gguf.GGUFReader, tmp_path: Path, layout: str
) -> None:
    from qwen_whisper_compat.convert import convert_checkpoint

    src = tmp_path / "ckpt"
    shutil.copytree(asr_ckpt, src)
    drop = ["tokenizer.json"] if layout == "vocab+merges" else ["vocab.json", "merges.txt"]
    for name in drop:
        (src / name).unlink()
    out = convert_checkpoint(src, tmp_path / "out", encoder="fp32", decoder="f16")
    ours = _reader(out.file_path("decoder"))
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
        assert _field(ours, key) == _field(f16_reader, key)


def test_sharded_checkpoint_converts_like_a_single_file(
    asr_ckpt: Path, converted: Callable[..., Path], tmp_path: Path
) -> None:
    """A checkpoint split into shards + index (the 1.7B layout) gives identical model files."""
    import torch
    from safetensors.torch import load_file as load_torch
    from safetensors.torch import save_file

    from qwen_whisper_compat.convert import convert_checkpoint

    src = tmp_path / "ckpt"
    shutil.copytree(asr_ckpt, src)
    tensors = load_torch(str(src / "model.safetensors"))
    (src / "model.safetensors").unlink()
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, part in halves.items():
        save_file({n: tensors[n].to(torch.bfloat16) for n in part}, str(src / file), metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    (src / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    out = convert_checkpoint(src, tmp_path / "out", encoder="fp32", decoder="f16")
    ref = load_model_dir(converted(asr_ckpt, "fp32", "f16"))
    assert out.manifest.file("encoder").sha256 == ref.manifest.file("encoder").sha256
    ours, theirs = GGUFIndex(out.file_path("decoder")), GGUFIndex(ref.file_path("decoder"))
    assert list(ours.tensors) == list(theirs.tensors)
    for name in ours.tensors:
        assert ours.tensor_bytes(name) == theirs.tensor_bytes(name), name
    assert sorted(out.manifest.source.files) == sorted(halves)


TORCH_FREE = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Block())
from qwen_whisper_compat.convert.cli import main
rc = main(sys.argv[1:])
assert "torch" not in sys.modules and "transformers" not in sys.modules
sys.exit(rc)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("encoder", "decoder"), [("fp16", "q8_0"), ("int8", "f16"), ("int4", "q4_k")])
def test_converter_runs_with_torch_unimportable(
    aligner_ckpt: Path, tmp_path: Path, encoder: str, decoder: str
) -> None:
    out = tmp_path / "model"
    args = [str(aligner_ckpt), str(out), "-q", "--encoder", encoder, "--decoder", decoder]
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    model_dir = load_model_dir(out, kind="aligner")
    assert model_dir.manifest.file("encoder").precision == encoder
    assert model_dir.manifest.file("decoder").precision == decoder


def test_python_dash_m_entry_point(asr_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "qwen_whisper_compat.convert", str(asr_ckpt), str(out), "--decoder", "f16"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"wrote {out}" in proc.stdout
    assert "decoder tensors: 24/24" in proc.stderr  # progress is shown
    assert load_model_dir(out).manifest.file("decoder").path == "decoder.f16.gguf"
    if os.name == "posix":  # (POSIX file modes; Windows has none to compare)
        assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # not left private like a temp folder
