"""Model folder validation: every way a folder can be wrong gives a ModelFolderError naming the problem."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_whisper_compat.engine.manifest import MANIFEST_NAME, Manifest
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.errors import ModelFolderError


@pytest.fixture
def folder(asr_ckpt: Path, converted: Callable[..., Path], tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(converted(asr_ckpt, "int8", "q8_0"), dst)
    return dst


def _edit_manifest(folder: Path, **changes: object) -> None:
    data = json.loads((folder / MANIFEST_NAME).read_text())
    data.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(data))


def test_valid_folder_loads(folder: Path) -> None:
    model_dir = load_model_dir(folder, kind="asr")
    assert model_dir.manifest.kind == "asr"
    assert model_dir.file_path("encoder").name == "encoder.int8.onnx"
    assert model_dir.file_path("decoder").name == "decoder.q8_0.gguf"


def test_manifest_round_trips(folder: Path) -> None:
    manifest = load_model_dir(folder).manifest
    assert Manifest.from_dict(json.loads(manifest.to_json())) == manifest


def test_missing_file(folder: Path) -> None:
    (folder / "decoder.q8_0.gguf").unlink()
    with pytest.raises(ModelFolderError, match=r"missing its decoder file 'decoder.q8_0.gguf'"):
        load_model_dir(folder)


def test_hash_mismatch(folder: Path) -> None:
    path = folder / "encoder.int8.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match=r"'encoder.int8.onnx' .* does not match its sha256"):
        load_model_dir(folder)
    assert load_model_dir(folder, verify_hashes=False).manifest.kind == "asr"  # sizes still agree


def test_truncated_file(folder: Path) -> None:
    path = folder / "decoder.q8_0.gguf"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelFolderError, match=r"is 1000 bytes, the manifest says"):
        load_model_dir(folder, verify_hashes=False)


def test_wrong_kind(folder: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"holds an asr model, but an aligner model is needed"):
        load_model_dir(folder, kind="aligner")


def test_unknown_converter_version(folder: Path) -> None:
    _edit_manifest(folder, format_version=99, converter_version="9.0.0")
    with pytest.raises(ModelFolderError, match=r"format version 99, made by converter 9.0.0.*Upgrade"):
        load_model_dir(folder)


def test_unknown_kind(folder: Path) -> None:
    _edit_manifest(folder, kind="tts")
    with pytest.raises(ModelFolderError, match=r"unknown kind 'tts'"):
        load_model_dir(folder)


def test_malformed_manifest(folder: Path) -> None:
    data = json.loads((folder / MANIFEST_NAME).read_text())
    del data["encoder"]
    (folder / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(ModelFolderError, match=r"manifest.json is malformed"):
        load_model_dir(folder)
    (folder / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"cannot read .*manifest.json"):
        load_model_dir(folder)


def test_checkpoint_folder_is_not_a_model_folder(asr_ckpt: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"looks like a Hugging Face checkpoint.*qwen-whisper-convert"):
        load_model_dir(asr_ckpt)


def test_missing_folder_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match=r"does not exist"):
        load_model_dir(tmp_path / "nope")
    with pytest.raises(ModelFolderError, match=r"has no manifest.json"):
        load_model_dir(tmp_path)


def test_errors_are_also_runtime_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        load_model_dir(tmp_path / "nope")
