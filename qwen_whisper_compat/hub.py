"""Model names -> model folders: downloads the official checkpoints, converts them once, and caches both.

Names (case-insensitive; ``available_models()`` lists them, whisper's first, in whisper's order)::

    tiny.en tiny base.en base small.en small          -> Qwen/Qwen3-ASR-0.6B   int8 encoder, q8_0 decoder
    medium.en medium large-v1 large-v2 large-v3 large -> Qwen/Qwen3-ASR-1.7B   int8 encoder, q8_0 decoder
      large-v3-turbo turbo
    qwen3-asr-0.6b[-SUFFIX]                           -> Qwen/Qwen3-ASR-0.6B
    qwen3-asr-1.7b[-SUFFIX]                           -> Qwen/Qwen3-ASR-1.7B

``SUFFIX`` is the decoder precision and the encoder's follows it: ``-f32`` (fp32 encoder), ``-f16`` (fp16),
``-q8_0`` (int8; the default without a suffix), ``-q4_k`` (int8). A ``precision`` argument overrides it. The
forced aligner ``Qwen/Qwen3-ForcedAligner-0.6B`` (name ``qwen3-forcedaligner-0.6b[-SUFFIX]`` for
``resolve_aligner``) is converted at the same precision as the model it serves.

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

Where checkpoints come from, first match wins:

- ``fetch=``: any ``Fetch`` callable (repo id, staging folder);
- ``$QWEN_WHISPER_HUB_MIRROR``: a local folder laid out like the hub (``<mirror>/Qwen/Qwen3-ASR-1.7B/...``),
  copied from; allowed under ``HF_HUB_OFFLINE`` since it needs no network;
- ``source="modelscope"`` or ``$QWEN_WHISPER_SOURCE=modelscope``: ModelScope (``[modelscope]`` extra);
- otherwise the Hugging Face Hub through ``huggingface_hub`` (which honours ``HF_ENDPOINT``, ``HF_TOKEN``).

``local_files_only=True`` forbids fetching at all; ``HF_HUB_OFFLINE=1`` forbids every source but the mirror.
A model that is then missing, or whose download fails, raises ModelNotAvailableError naming the checkpoint
and the folder to put it in.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qwen_whisper_compat.engine.modeldir import (
    DECODER_PRECISIONS,
    ENCODER_PRECISIONS,
    MANIFEST_NAME,
    Kind,
    load_model_dir,
)
from qwen_whisper_compat.errors import ModelFolderError, ModelNotAvailableError, UnknownModelError

logger = logging.getLogger("qwen_whisper_compat.hub")

#: Downloads the checkpoint ``repo_id`` ("Qwen/Qwen3-ASR-1.7B") into a staging folder. It is called again
#: with the same folder after a failure, so it should resume from what is already there.
Fetch = Callable[[str, Path], None]
Source = Literal["huggingface", "modelscope"]
#: ``(encoder precision, decoder precision)``, e.g. ``("int8", "q8_0")``.
Precision = tuple[str, str]
AlignerMode = bool | Literal["if_available"]

ASR_0_6B = "Qwen/Qwen3-ASR-0.6B"
ASR_1_7B = "Qwen/Qwen3-ASR-1.7B"
ALIGNER_REPO = "Qwen/Qwen3-ForcedAligner-0.6B"

#: whisper's model names, in whisper's order (``whisper._MODELS``), and the checkpoint each one maps to.
WHISPER_NAMES: dict[str, str] = {
    "tiny.en": ASR_0_6B, "tiny": ASR_0_6B, "base.en": ASR_0_6B, "base": ASR_0_6B,
    "small.en": ASR_0_6B, "small": ASR_0_6B,
    "medium.en": ASR_1_7B, "medium": ASR_1_7B, "large-v1": ASR_1_7B, "large-v2": ASR_1_7B,
    "large-v3": ASR_1_7B, "large": ASR_1_7B, "large-v3-turbo": ASR_1_7B, "turbo": ASR_1_7B,
}  # fmt: skip
#: Names that take a precision suffix.
QWEN_NAMES: dict[str, str] = {"qwen3-asr-0.6b": ASR_0_6B, "qwen3-asr-1.7b": ASR_1_7B}
ALIGNER_NAMES: dict[str, str] = {"qwen3-forcedaligner-0.6b": ALIGNER_REPO}
#: Precision suffix -> (encoder, decoder).
PRECISIONS: dict[str, Precision] = {
    "f32": ("fp32", "f32"), "f16": ("fp16", "f16"), "q8_0": ("int8", "q8_0"), "q4_k": ("int8", "q4_k"),
}  # fmt: skip
DEFAULT_PRECISION: Precision = PRECISIONS["q8_0"]

CACHE_ENV = "QWEN_WHISPER_CACHE"
SOURCE_ENV = "QWEN_WHISPER_SOURCE"
MIRROR_ENV = "QWEN_WHISPER_HUB_MIRROR"
OFFLINE_ENV = "HF_HUB_OFFLINE"

_INDEX_NAME = "model.safetensors.index.json"
_SINGLE_NAME = "model.safetensors"


@dataclass(frozen=True)
class ModelSpec:
    """What a model name stands for."""

    #: The name, lower-cased.
    name: str
    #: The official checkpoint, e.g. ``"Qwen/Qwen3-ASR-1.7B"``.
    repo_id: str
    #: ``(encoder, decoder)`` precision of the converted folder.
    precision: Precision


@dataclass(frozen=True)
class ResolvedModel:
    """The folders a model name or path resolved to."""

    #: The ASR model folder, ready for ``load_model_dir``.
    asr: Path
    #: The forced-aligner model folder, or ``None`` when there is none (or it was not asked for).
    aligner: Path | None
    #: The model name (lower-cased), or the path as given.
    name: str


# ------------------------------------------------------------------------------------------------- names
def available_models() -> list[str]:
    """Every model name ``resolve_model`` accepts: whisper's 14, then the Qwen names with their suffixes."""
    return [*WHISPER_NAMES, *_with_suffixes(QWEN_NAMES)]


def available_aligners() -> list[str]:
    """Every aligner name ``resolve_aligner`` accepts."""
    return _with_suffixes(ALIGNER_NAMES)


def _with_suffixes(bases: Iterable[str]) -> list[str]:
    return [name for base in bases for name in (base, *(f"{base}-{s}" for s in PRECISIONS))]


def parse_model_name(name: str, precision: str | Precision | None = None) -> ModelSpec:
    """The checkpoint and precision a model name stands for.

    Args:
        name: A name from ``available_models()`` (case-insensitive).
        precision: Overrides the name's precision: a suffix (``"f16"``) or ``(encoder, decoder)``.

    Raises:
        UnknownModelError: Unknown name or precision suffix; the message lists the valid ones.
        ValueError: ``precision`` is not a valid precision.
    """
    return _parse(name, WHISPER_NAMES, QWEN_NAMES, available_models(), precision)


def parse_aligner_name(name: str, precision: str | Precision | None = None) -> ModelSpec:
    """As ``parse_model_name``, for the names in ``available_aligners()``."""
    return _parse(name, {}, ALIGNER_NAMES, available_aligners(), precision)


def _parse(
    name: str, fixed: dict[str, str], bases: dict[str, str], valid: list[str], precision: str | Precision | None
) -> ModelSpec:
    key = name.strip().lower()
    if key in fixed:
        repo_id, default = fixed[key], DEFAULT_PRECISION
    else:
        repo_id, default = _parse_suffixed(name, key, bases, valid)
    return ModelSpec(key, repo_id, default if precision is None else to_precision(precision))


def _parse_suffixed(name: str, key: str, bases: dict[str, str], valid: list[str]) -> tuple[str, Precision]:
    for base, repo_id in bases.items():
        if key == base:
            return repo_id, DEFAULT_PRECISION
        if key.startswith(base + "-"):
            suffix = key[len(base) + 1 :]
            if suffix not in PRECISIONS:
                raise UnknownModelError(
                    f"unknown precision suffix '-{suffix}' in model name {name!r}; "
                    f"choose one of {' '.join('-' + s for s in PRECISIONS)} (e.g. {base}-q4_k)"
                )
            return repo_id, PRECISIONS[suffix]
    raise UnknownModelError(
        f"model {name!r} not found: it is neither a known model name nor an existing folder; available models = {valid}"
    )


def to_precision(precision: str | Precision) -> Precision:
    """``(encoder, decoder)`` from a suffix (``"q4_k"``, ``"-f16"``) or a validated pair.

    Raises:
        ValueError: Unknown suffix or precision.
    """
    if isinstance(precision, str):
        suffix = precision.lstrip("-").lower()
        if suffix not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        return PRECISIONS[suffix]
    encoder, decoder = precision
    if encoder not in ENCODER_PRECISIONS or decoder not in DECODER_PRECISIONS:
        raise ValueError(
            f"unknown precision {precision!r}; the encoder takes one of {', '.join(ENCODER_PRECISIONS)} "
            f"and the decoder one of {', '.join(DECODER_PRECISIONS)}"
        )
    return encoder, decoder


# -------------------------------------------------------------------------------------------- public API
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
    cache = _Cache(cache_root(download_root), local_files_only, source, fetch)
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
    cache = _Cache(cache_root(download_root), local_files_only, source, fetch)
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
    """The cache root plus how to fill it; choosing a source is deferred until a download is needed."""

    root: Path
    local_files_only: bool
    source_arg: Source | None
    fetch_arg: Fetch | None

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        return _locked(self.root / ".locks" / f"{name}.lock")

    def source(self) -> Source:
        value = self.source_arg or os.environ.get(SOURCE_ENV, "").strip().lower() or "huggingface"
        if value not in ("huggingface", "modelscope"):
            raise ValueError(f"unknown model source {value!r} (from {SOURCE_ENV}?); choose huggingface or modelscope")
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


def _from_repo(cache: _Cache, spec: ModelSpec, kind: Kind, who: str) -> Path:
    encoder, decoder = spec.precision
    dest = cache.models / f"{_repo_name(spec.repo_id)}-{encoder}-{decoder}"
    return _ensure_converted(cache, dest, kind, spec.precision, lambda: _ensure_checkpoint(cache, spec.repo_id, who))


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


# --------------------------------------------------------------------------------------------- download
def _repo_name(repo_id: str) -> str:
    return repo_id.rsplit("/", 1)[-1]


def _ensure_checkpoint(cache: _Cache, repo_id: str, who: str) -> Path:
    """The complete checkpoint folder of ``repo_id`` in the cache, downloading it if needed."""
    final = cache.checkpoints / _repo_name(repo_id)
    if _checkpoint_problem(final) is None:
        return final
    fetch, reason = cache.fetcher()
    if fetch is None:
        raise _not_available(who, repo_id, final, reason, cache.source())
    with cache.lock(f"checkpoint-{final.name}"):
        if _checkpoint_problem(final) is not None:
            _download(fetch, repo_id, final, lambda why: _not_available(who, repo_id, final, why, cache.source()))
    return final


def _download(fetch: Fetch, repo_id: str, final: Path, fail: Callable[[str], ModelNotAvailableError]) -> None:
    """Fetch into a hidden staging folder beside ``final``, check it, rename it into place."""
    staging = final.with_name(f".{final.name}.partial")
    if final.exists():  # incomplete, e.g. a manual download that stopped: resume it
        logger.warning("%s is incomplete (%s); completing it", final, _checkpoint_problem(final))
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
    problem = _checkpoint_problem(staging)
    if problem is not None:
        _discard_if_empty(staging)
        raise fail(f"the download is incomplete ({problem})")
    os.replace(staging, final)
    logger.info("downloaded %s into %s", repo_id, final)


def _checkpoint_problem(folder: Path) -> str | None:
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
    if isinstance(e, _MissingPackageError):
        return text
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _not_available(who: str, repo_id: str, target: Path, reason: str, source: Source) -> ModelNotAvailableError:
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


# ------------------------------------------------------------------------------------------------ fetch
class _MissingPackageError(Exception):
    """A download source's package is not installed; the message says what to install."""


def huggingface_fetch(repo_id: str, staging: Path) -> None:
    """Download ``repo_id`` from the Hugging Face Hub into ``staging``, resuming what is there."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise _MissingPackageError("huggingface_hub is not installed (pip install huggingface_hub)") from e
    snapshot_download(repo_id=repo_id, local_dir=staging)


def modelscope_fetch(repo_id: str, staging: Path) -> None:
    """Download ``repo_id`` from ModelScope into ``staging``, resuming what is there."""
    try:
        module = importlib.import_module("modelscope")
    except ImportError as e:
        raise _MissingPackageError(
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


# ------------------------------------------------------------------------------------------------- lock
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed). The OS drops it if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _try_lock(fd):
            logger.info("waiting for another process to finish (lock %s)", path)
            _lock(fd)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _lock(fd: int) -> None:
        while not _try_lock(fd):
            time.sleep(0.5)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
