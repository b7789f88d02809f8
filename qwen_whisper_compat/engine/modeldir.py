"""Model folders on disk: opening and validating one (files present, sizes, hashes), and writing the manifest.

The format itself (what ``manifest.json`` holds) is :mod:`.manifest`; folders made by the Qwen3-ASR-GGUF
export scripts, which have no manifest, are read through :mod:`.hzformat`. This module stays light: it
imports neither onnxruntime nor llama_cpp.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_whisper_compat.engine.hzformat import hz_manifest
from qwen_whisper_compat.engine.manifest import MANIFEST_NAME, Kind, Manifest, ModelFile, Role
from qwen_whisper_compat.errors import ModelFolderError, QwenWhisperError


@dataclass(frozen=True)
class ModelDir:
    """A validated model folder."""

    path: Path
    manifest: Manifest

    def file_path(self, role: Role) -> Path:
        """Absolute path of the file playing ``role``."""
        return self.path / self.manifest.file(role).path


def read_json_object(path: Path, error: type[QwenWhisperError]) -> dict[str, Any]:
    """A JSON file that must hold an object; ``error`` (one line, naming the file) otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise error(f"{path} does not hold a JSON object")
    return data


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def describe_file(folder: Path, role: Role, name: str, precision: str) -> ModelFile:
    """Build the manifest entry for a finished file inside ``folder``."""
    p = folder / name
    return ModelFile(role=role, path=name, precision=precision, size=p.stat().st_size, sha256=sha256_file(p))


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` into ``folder``."""
    (folder / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")


def load_model_dir(
    path: str | os.PathLike[str], kind: Kind | None = None, verify_hashes: bool = True
) -> ModelDir:
    """Open and validate a model folder.

    Args:
        path: The folder.
        kind: If given, the folder must hold this kind of model.
        verify_hashes: Recompute every file's sha256 and compare with the manifest (about one second
            per GB). Sizes and presence are always checked.

    Returns:
        The validated folder.

    Raises:
        ModelFolderError: The folder is missing, is an unconverted checkpoint, has no or an unreadable
            manifest, a newer format, the wrong kind, or a missing, truncated or altered file.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {str(folder)!r} does not exist or is not a folder")
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        hz = hz_manifest(folder, kind)
        if hz is not None:
            return ModelDir(path=folder.resolve(), manifest=hz)
        if (folder / "config.json").is_file():
            raise ModelFolderError(
                f"{str(folder)!r} looks like a Hugging Face checkpoint, not a converted model folder; "
                f"convert it first: qwen-whisper-convert {folder} OUT_FOLDER"
            )
        raise ModelFolderError(f"{str(folder)!r} is not a model folder: it has no {MANIFEST_NAME}")
    manifest = Manifest.from_dict(read_json_object(manifest_path, ModelFolderError))
    if kind is not None and manifest.kind != kind:
        raise ModelFolderError(
            f"{str(folder)!r} holds an {manifest.kind} model, "
            f"but an {kind} model is needed here"
        )
    _check_files(folder, manifest.files, verify_hashes)
    return ModelDir(path=folder.resolve(), manifest=manifest)


def _check_files(folder: Path, files: Iterable[ModelFile], verify_hashes: bool) -> None:
    for f in files:
        p = folder / f.path
        if not p.is_file():
            raise ModelFolderError(f"model folder {str(folder)!r} is missing its {f.role} file {f.path!r}")
        size = p.stat().st_size
        if size != f.size:
            raise ModelFolderError(
                f"{f.path!r} in {str(folder)!r} is {size} bytes, the manifest says {f.size}: "
                "the file is truncated or was replaced; re-convert or re-download the model"
            )
        if verify_hashes and f.sha256 and sha256_file(p) != f.sha256:
            raise ModelFolderError(
                f"{f.path!r} in {str(folder)!r} does not match its sha256 in manifest.json: "
                "the file is corrupted or was replaced; re-convert or re-download the model"
            )
