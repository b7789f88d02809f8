"""Model names and paths -> model folders: downloads the official checkpoints, converts them once, and caches both.

A name is looked up in :mod:`.registry` (which checkpoint, which precision); the checkpoint is downloaded by
:mod:`.download` when it is not in the cache, then converted into a model folder.

A path instead of a name may be one of our model folders (``manifest.json``), a Qwen3-ASR-GGUF export
folder, or an official checkpoint folder (``config.json`` + safetensors), which is converted into the cache on
first use. The aligner of a path is its ``aligner/`` subfolder (any of the three kinds), or, for an export
folder, the aligner files beside the ASR files; a path never triggers a download.

Cache layout (root: ``download_root``, else ``$QWEN_WHISPER_CACHE``, else
``$XDG_CACHE_HOME/qwen-whisper-compat``, else ``~/.cache/qwen-whisper-compat``)::

    <root>/checkpoints/<RepoName>/            downloaded official checkpoints (kept for other precisions)
    <root>/checkpoints/.<RepoName>.partial/   an interrupted download; the next attempt resumes it
    <root>/models/<RepoName>-<enc>-<dec>/     converted model folders
    <root>/models/<folder>-<key>-<enc>-<dec>/ conversions of local checkpoint folders; <key> hashes the
                                              folder's path and its files' sizes and mtimes
    <root>/.locks/                            one lock file per download / conversion

Every folder appears by an atomic rename once complete, and a lock (``flock``; ``msvcrt.locking`` on
Windows) makes a concurrent process wait for the download or conversion instead of repeating it.

A model that is not in the cache and cannot be downloaded (``local_files_only=True``, ``HF_HUB_OFFLINE``, no
network; see :mod:`.download`) raises ModelNotAvailableError naming the checkpoint and the folder to put it in.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qwen_whisper_compat.download import Fetch, Source, Sources, ensure_checkpoint
from qwen_whisper_compat.engine.manifest import MANIFEST_NAME, Kind
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.errors import ModelFolderError, ModelNotAvailableError, UnknownModelError
from qwen_whisper_compat.registry import (
    ALIGNER_REPO,
    DEFAULT_PRECISION,
    ModelSpec,
    Precision,
    parse_aligner_name,
    parse_model_name,
    to_precision,
)

logger = logging.getLogger("qwen_whisper_compat.hub")

AlignerMode = bool | Literal["if_available"]

CACHE_ENV = "QWEN_WHISPER_CACHE"


@dataclass(frozen=True)
class ResolvedModel:
    """The folders a model name or path resolved to."""

    #: The ASR model folder, ready for ``load_model_dir``.
    asr: Path
    #: The forced-aligner model folder, or ``None`` when there is none (or it was not asked for).
    aligner: Path | None
    #: The model name (lower-cased), or the path as given.
    name: str


def resolve_model(
    name_or_path: str | os.PathLike[str],
    download_root: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    aligner: AlignerMode = True,
    source: Source | None = None,
    fetch: Fetch | None = None,
    precision: str | Precision | None = None,
) -> ResolvedModel:
    """The model folder (and forced-aligner folder) for a model name or path, downloading and converting
    on first use.

    Args:
        name_or_path: A name from ``available_models()``, or a folder (see the module docstring).
        download_root: The cache root; default ``$QWEN_WHISPER_CACHE`` or ``~/.cache/qwen-whisper-compat``.
        local_files_only: Use only what is already in the cache; never fetch.
        aligner: ``True``: also resolve the forced aligner and fail if it is not available;
            ``"if_available"``: the aligner, or ``None`` if it is not cached and cannot be fetched;
            ``False``: no aligner. A path gets the aligner stored with it, if any, whatever this says.
        source: ``"huggingface"`` (default, or ``$QWEN_WHISPER_SOURCE``) or ``"modelscope"``.
        fetch: Download function to use instead of the source (tests, custom mirrors).
        precision: For names and checkpoint folders: a suffix (``"f16"``) or ``(encoder, decoder)``
            that overrides the name's precision.

    Returns:
        The resolved folders.

    Raises:
        UnknownModelError: Neither a known name nor an existing path; the message lists the names.
        ModelNotAvailableError: The model (or the aligner, with ``aligner=True``) is not cached and
            cannot be downloaded; the message says what to download where.
        ModelFolderError: A folder given is not a usable model folder of the right kind.
        ConversionError: Converting a checkpoint failed (CheckpointError for a broken checkpoint).
    """
    cache = _Cache(cache_root(download_root), Sources(local_files_only, source, fetch))
    target = _classify(name_or_path, parse_model_name, precision)
    if isinstance(target, Path):
        asr = _from_path(cache, target, "asr", precision)
        found = None if aligner is False else _aligner_beside(cache, target, precision)
        return ResolvedModel(asr=asr, aligner=found, name=os.fspath(name_or_path))
    asr = _from_repo(cache, target, "asr", f"model {target.name!r}")
    return ResolvedModel(asr=asr, aligner=_aligner_for(cache, target, aligner), name=target.name)


def resolve_aligner(
    name_or_path: str | os.PathLike[str],
    download_root: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
    source: Source | None = None,
    fetch: Fetch | None = None,
    precision: str | Precision | None = None,
) -> Path:
    """The forced-aligner folder for an explicit aligner name or path (a folder holding ``aligner/`` counts).

    Arguments, return value and errors are as for ``resolve_model``, with the names of
    ``available_aligners()``.
    """
    cache = _Cache(cache_root(download_root), Sources(local_files_only, source, fetch))
    target = _classify(name_or_path, parse_aligner_name, precision)
    if isinstance(target, Path):
        sub = target / "aligner"
        return _from_path(cache, sub if sub.is_dir() else target, "aligner", precision)
    return _from_repo(cache, target, "aligner", f"aligner {target.name!r}")


def cache_root(download_root: str | os.PathLike[str] | None = None) -> Path:
    """The cache root: ``download_root``, else ``$QWEN_WHISPER_CACHE``, else
    ``$XDG_CACHE_HOME/qwen-whisper-compat``, else ``~/.cache/qwen-whisper-compat``."""
    if download_root is not None:
        return Path(download_root).expanduser().absolute()
    if env := os.environ.get(CACHE_ENV):
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "qwen-whisper-compat").absolute()


def _classify(
    name_or_path: str | os.PathLike[str],
    parse: Callable[[str, str | Precision | None], ModelSpec],
    precision: str | Precision | None,
) -> ModelSpec | Path:
    """A name (checked first, as whisper does) or an existing path."""
    if not isinstance(name_or_path, str):
        return Path(name_or_path).expanduser()
    try:
        return parse(name_or_path, precision)
    except UnknownModelError:
        path = Path(name_or_path).expanduser()
        if path.exists():
            return path
        raise


# ------------------------------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class _Cache:
    """The cache root plus where to download what it lacks."""

    root: Path
    sources: Sources

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def lock(self, name: str) -> AbstractContextManager[None]:
        return _locked(self.root / ".locks" / f"{name}.lock")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the lock file ``path`` across processes, waiting while another process holds it (a download or a
    conversion of the same model). The OS drops the lock when its process dies: no stale lock after a kill."""
    from filelock import FileLock, Timeout  # imports asyncio: only when a model is fetched or converted

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("waiting for another process to finish (lock %s)", path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _from_repo(cache: _Cache, spec: ModelSpec, kind: Kind, who: str) -> Path:
    encoder, decoder = spec.precision
    dest = cache.models / f"{_repo_name(spec.repo_id)}-{encoder}-{decoder}"
    return _ensure_converted(cache, dest, kind, spec.precision, lambda: _checkpoint(cache, spec.repo_id, who))


def _from_path(cache: _Cache, path: Path, kind: Kind, precision: str | Precision | None) -> Path:
    """A model folder as is, or an official checkpoint folder converted into the cache."""
    if (path / MANIFEST_NAME).is_file() or not (path / "config.json").is_file():
        return load_model_dir(path, kind, verify_hashes=False).path
    src = path.resolve()
    pair = DEFAULT_PRECISION if precision is None else to_precision(precision)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", src.name).lstrip(".") or "checkpoint"
    dest = cache.models / f"{safe}-{_local_key(src)}-{pair[0]}-{pair[1]}"
    return _ensure_converted(cache, dest, kind, pair, lambda: src)


def _local_key(folder: Path) -> str:
    """12 hex digits that change when the folder moves or any of its files changes size or mtime."""
    h = hashlib.sha256(os.fsencode(folder))
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_file():
            st = entry.stat()
            h.update(f"\0{entry.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def _aligner_beside(cache: _Cache, path: Path, precision: str | Precision | None) -> Path | None:
    """The aligner stored with a model path: ``aligner/``, or aligner files beside an export's ASR files."""
    sub = path / "aligner"
    if sub.is_dir():
        return _from_path(cache, sub, "aligner", precision)
    if (path / MANIFEST_NAME).is_file() or (path / "config.json").is_file():
        return None
    try:
        return load_model_dir(path, "aligner", verify_hashes=False).path
    except ModelFolderError:
        return None


def _aligner_for(cache: _Cache, spec: ModelSpec, mode: AlignerMode) -> Path | None:
    if mode is False:
        return None
    aligner = ModelSpec(spec.name, ALIGNER_REPO, spec.precision)
    try:
        return _from_repo(cache, aligner, "aligner", f"the forced aligner for model {spec.name!r}")
    except ModelNotAvailableError as e:
        if mode != "if_available":
            raise
        logger.info("continuing without the forced aligner: %s", e)
        return None


# ------------------------------------------------------------------------------------------- conversion
def _ensure_converted(cache: _Cache, dest: Path, kind: Kind, precision: Precision, source: Callable[[], Path]) -> Path:
    """``dest`` if it is a usable model folder, else convert ``source()`` into it (once, under a lock)."""
    if _usable(dest, kind):
        return dest
    src = source()  # may download; raises before anything is written when that is not possible
    with cache.lock(dest.name):
        if not _usable(dest, kind):  # another process may have finished it while this one waited
            _convert(src, dest, kind, precision)
    return dest


def _usable(folder: Path, kind: Kind) -> bool:
    if not (folder / MANIFEST_NAME).is_file():
        return False
    try:
        load_model_dir(folder, kind, verify_hashes=False)
    except ModelFolderError as e:
        logger.warning("the cached model folder is unusable and will be converted again: %s", e)
        return False
    return True


def _convert(src: Path, dest: Path, kind: Kind, precision: Precision) -> None:
    from qwen_whisper_compat.convert import convert_checkpoint
    from qwen_whisper_compat.convert.checkpoint import Checkpoint

    found = Checkpoint(src).kind
    if found != kind:
        raise ModelFolderError(f"{str(src)!r} is an {found} checkpoint, but an {kind} model is needed here")
    for stale in dest.parent.glob(f".{dest.name}.partial-*"):  # left by a killed conversion; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    encoder, decoder = precision
    logger.info("converting %s into %s (encoder %s, decoder %s); this happens once", src, dest, encoder, decoder)
    convert_checkpoint(src, dest, encoder=encoder, decoder=decoder, overwrite=dest.exists())
    logger.info("converted %s", dest)


def _repo_name(repo_id: str) -> str:
    return repo_id.rsplit("/", 1)[-1]


def _checkpoint(cache: _Cache, repo_id: str, who: str) -> Path:
    """The checkpoint folder of ``repo_id`` in the cache, downloaded if needed."""
    return ensure_checkpoint(cache.checkpoints / _repo_name(repo_id), repo_id, who, cache.sources, cache.lock)
