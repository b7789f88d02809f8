"""Downloading the official checkpoints: where from, into a staging folder, checked, renamed into place.

Where checkpoints come from, first match wins (:meth:`Sources.fetcher`):

- ``fetch=``: any :data:`Fetch` callable (repo id, staging folder);
- ``$QWEN_WHISPER_HUB_MIRROR``: a local folder laid out like the hub (``<mirror>/Qwen/Qwen3-ASR-1.7B/...``),
  copied from; allowed under ``HF_HUB_OFFLINE`` since it needs no network;
- ``source="modelscope"`` or ``$QWEN_WHISPER_SOURCE=modelscope``: ModelScope (``[modelscope]`` extra);
- otherwise the Hugging Face Hub through ``huggingface_hub`` (which honours ``HF_ENDPOINT``, ``HF_TOKEN``).

``local_files_only=True`` forbids fetching at all; ``HF_HUB_OFFLINE=1`` forbids every source but the mirror.
A download goes into ``.<name>.partial`` beside its final folder and appears under its final name only once
complete; an interrupted one is resumed by the next attempt.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import shlex
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qwen_whisper_compat.errors import MissingDependencyError, ModelNotAvailableError, UnsupportedOptionError

logger = logging.getLogger("qwen_whisper_compat.hub")

#: Downloads the checkpoint ``repo_id`` ("Qwen/Qwen3-ASR-1.7B") into a staging folder. It is called again
#: with the same folder after a failure, so it should resume from what is already there.
Fetch = Callable[[str, Path], None]
Source = Literal["huggingface", "modelscope"]

SOURCE_ENV = "QWEN_WHISPER_SOURCE"
MIRROR_ENV = "QWEN_WHISPER_HUB_MIRROR"
OFFLINE_ENV = "HF_HUB_OFFLINE"

_INDEX_NAME = "model.safetensors.index.json"
_SINGLE_NAME = "model.safetensors"


@dataclass(frozen=True)
class Sources:
    """Where checkpoints may be downloaded from; the choice is made only when a download is needed.

    Args:
        local_files_only: Never download.
        source_arg: ``"huggingface"``, ``"modelscope"``, or ``None`` for ``$QWEN_WHISPER_SOURCE`` (default
            Hugging Face).
        fetch_arg: A download function that replaces the source (tests, custom mirrors).
    """

    local_files_only: bool = False
    source_arg: Source | None = None
    fetch_arg: Fetch | None = None

    def source(self) -> Source:
        """The download source in effect.

        Raises:
            UnsupportedOptionError: ``$QWEN_WHISPER_SOURCE`` names an unknown source (a ValueError).
        """
        value = self.source_arg or os.environ.get(SOURCE_ENV, "").strip().lower() or "huggingface"
        if value not in ("huggingface", "modelscope"):
            raise UnsupportedOptionError(f"unknown model source {value!r} (from {SOURCE_ENV}?); choose huggingface or modelscope")
        return "modelscope" if value == "modelscope" else "huggingface"

    def fetcher(self) -> tuple[Fetch | None, str]:
        """The download function, or ``None`` and the reason why downloading is off."""
        if self.local_files_only:
            return None, "local_files_only=True was passed"
        mirror = os.environ.get(MIRROR_ENV)
        if self.fetch_arg is None and mirror:
            return functools.partial(mirror_fetch, Path(mirror).expanduser()), ""
        if _env_true(OFFLINE_ENV):
            return None, f"{OFFLINE_ENV} is set"
        if self.fetch_arg is not None:
            return self.fetch_arg, ""
        return (modelscope_fetch if self.source() == "modelscope" else huggingface_fetch), ""


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")


def ensure_checkpoint(
    final: Path, repo_id: str, who: str, sources: Sources, lock: Callable[[str], AbstractContextManager[None]]
) -> Path:
    """The complete checkpoint folder ``final`` of ``repo_id``, downloading it first if needed.

    Args:
        final: Where the checkpoint lives in the cache.
        repo_id: The official checkpoint, e.g. ``"Qwen/Qwen3-ASR-1.7B"``.
        who: What needs it, for the error message (``"model 'turbo'"``).
        sources: Where it may come from.
        lock: A cross-process lock by name (held while downloading).

    Raises:
        ModelNotAvailableError: It is not there and cannot be downloaded now (the message says what to
            download where).
    """
    if checkpoint_problem(final) is None:
        return final
    fetch, reason = sources.fetcher()
    if fetch is None:
        raise not_available(who, repo_id, final, reason, sources.source())
    with lock(f"checkpoint-{final.name}"):
        if checkpoint_problem(final) is not None:
            _download(fetch, repo_id, final, lambda why: not_available(who, repo_id, final, why, sources.source()))
    return final


def _download(fetch: Fetch, repo_id: str, final: Path, fail: Callable[[str], ModelNotAvailableError]) -> None:
    """Fetch into a hidden staging folder beside ``final``, check it, rename it into place."""
    staging = final.with_name(f".{final.name}.partial")
    if final.exists():  # incomplete, e.g. a manual download that stopped: resume it
        logger.warning("%s is incomplete (%s); completing it", final, checkpoint_problem(final))
        shutil.rmtree(staging, ignore_errors=True)
        os.replace(final, staging)
    staging.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s into %s", repo_id, final)
    try:
        fetch(repo_id, staging)
    except BaseException as e:
        _discard_if_empty(staging)
        if isinstance(e, Exception):
            raise fail(_describe(e)) from e
        raise  # KeyboardInterrupt, SystemExit
    problem = checkpoint_problem(staging)
    if problem is not None:
        _discard_if_empty(staging)
        raise fail(f"the download is incomplete ({problem})")
    os.replace(staging, final)
    logger.info("downloaded %s into %s", repo_id, final)


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint (config.json and every weight file), or ``None``."""
    if not (folder / "config.json").is_file():
        return "no config.json"
    index = folder / _INDEX_NAME
    if not index.is_file():
        return None if (folder / _SINGLE_NAME).is_file() else f"no {_SINGLE_NAME} or {_INDEX_NAME}"
    try:
        files = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"unreadable {_INDEX_NAME}"
    missing = sorted(f for f in files if not (folder / f).is_file())
    return f"missing {', '.join(missing)}" if missing else None


def _discard_if_empty(staging: Path) -> None:
    """Remove a staging folder that holds no data (and the then-empty parent); keep data for resuming."""
    if any(_is_data(staging, p) for p in staging.rglob("*")):
        logger.info("keeping the partial download in %s; the next attempt resumes it", staging)
        return
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()


def _is_data(staging: Path, path: Path) -> bool:
    """A non-empty file worth resuming from; huggingface_hub's bookkeeping under ``.cache/`` (``.gitignore``,
    ``.lock``, ``.metadata``) is not, its half-downloaded ``*.incomplete`` files are."""
    if path.relative_to(staging).parts[0] == ".cache" and not path.name.endswith(".incomplete"):
        return False
    return path.is_file() and path.stat().st_size > 0


def _describe(e: Exception) -> str:
    text = " ".join(str(e).split())
    if isinstance(e, MissingDependencyError):
        return text
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def not_available(who: str, repo_id: str, target: Path, reason: str, source: Source) -> ModelNotAvailableError:
    if source == "modelscope":
        url = f"https://modelscope.cn/models/{repo_id}"
        cmd = f"modelscope download --model {repo_id} --local_dir {shlex.quote(str(target))}"
    else:
        url = f"https://huggingface.co/{repo_id}"
        cmd = f"hf download {repo_id} --local-dir {shlex.quote(str(target))}"
    return ModelNotAvailableError(
        f"{who} needs the checkpoint {repo_id} ({url}), which is not in the cache and cannot be downloaded: "
        f"{reason.rstrip('.')}. Download it (e.g. `{cmd}`) or pass a model folder path."
    )


def huggingface_fetch(repo_id: str, staging: Path) -> None:
    """Download ``repo_id`` from the Hugging Face Hub into ``staging``, resuming what is there."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise MissingDependencyError("huggingface_hub is not installed (pip install huggingface_hub)") from e
    snapshot_download(repo_id=repo_id, local_dir=staging)


def modelscope_fetch(repo_id: str, staging: Path) -> None:
    """Download ``repo_id`` from ModelScope into ``staging``, resuming what is there."""
    try:
        module = importlib.import_module("modelscope")
    except ImportError as e:
        raise MissingDependencyError(
            "downloading from ModelScope needs the modelscope package: pip install 'qwen-whisper-compat[modelscope]'"
        ) from e
    module.snapshot_download(repo_id, local_dir=str(staging))


def mirror_fetch(mirror: Path, repo_id: str, staging: Path) -> None:
    """Copy ``<mirror>/<repo_id>/`` into ``staging``, skipping hidden files and files already copied."""
    src = mirror / repo_id
    if not src.is_dir():
        raise FileNotFoundError(f"the hub mirror {mirror} has no folder {repo_id}")
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(src)
        for name in filenames:
            if not name.startswith("."):
                _copy_file(Path(dirpath) / name, staging / rel / name)


def _copy_file(src: Path, dst: Path) -> None:
    """Copy through a hidden temporary name, so that a file of the right size is a complete copy."""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.incomplete")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
