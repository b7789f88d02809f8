"""What ``qwen-whisper-batch INPUT...`` means: the list of audio inputs, and where each one's outputs go.

An INPUT is an audio or video file, a folder (searched recursively for audio and video extensions), a
text file of paths or URIs (one per line, ``#`` comments; relative paths are relative to the list), or a
URI that pyarrow's filesystems read (``file://``, ``s3://``, ``gs://``, ...). Each input gets a *key*: its
path relative to the folder it was found under, without the extension (``talks/2024/a``), so that outputs
``<output_dir>/talks/2024/a.srt`` mirror the inputs and two ``a.mp3`` in different folders never collide.
Inputs given from several folders are keyed relative to the folders' common ancestor; two inputs that
differ only in their extension (``a.mp3``, ``a.wav``) keep it in their keys (``a.mp3``, ``a.wav``).
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs

logger = logging.getLogger("qwen_whisper_compat.batch")

#: Extensions taken from folders: what PyAV's FFmpeg decodes and people keep speech in.
_EXTENSIONS = ".wav .flac .mp3 .m4a .aac .ogg .oga .opus .wma .aiff .aif .amr .ac3 .caf .spx .mka .webm .mp4 .m4v"
AUDIO_EXTENSIONS = frozenset(f"{_EXTENSIONS} .mkv .mov .avi .wmv .flv .mpg .mpeg .ts .3gp".split())
#: Extensions of a file that lists inputs instead of holding audio.
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})


@dataclass(frozen=True)
class Input:
    """One audio input of a batch job."""

    #: What the worker opens: an absolute local path, or a URI.
    uri: str
    #: Where its outputs go, relative to the output folder, without extension (POSIX separators).
    key: str
    #: Size in bytes and modification time (ns) when listed; ``None`` when unknown (a missing file).
    size: int | None
    mtime_ns: int | None
    #: Why the input cannot be read at all (missing, a folder, ...), found while listing; ``""`` if none.
    problem: str = ""


@dataclass(frozen=True)
class _Found:
    uri: str
    #: (scheme, bucket or host) the path belongs to, and the folder its key is relative to
    space: tuple[str, str]
    anchor: str
    relative: str
    size: int | None
    mtime_ns: int | None
    problem: str = ""


def expand(inputs: Sequence[str]) -> list[Input]:
    """The audio inputs ``inputs`` name, in a stable order, each once.

    A missing input is kept, with its ``problem`` said, so that it becomes a ``failed`` row, not a crash.
    A folder with no audio in it is logged.
    """
    found: list[_Found] = []
    for item in inputs:
        found.extend(_expand_one(item, listed_from=None))
    unique: dict[str, _Found] = {}
    for f in found:
        unique.setdefault(f.uri, f)
    return _keyed(list(unique.values()))


def _expand_one(item: str, listed_from: str | None) -> list[_Found]:
    fs, path, space = _filesystem(item, listed_from)
    import pyarrow.fs as pafs

    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        selector = pafs.FileSelector(path, recursive=True)
        files = [
            i for i in fs.get_file_info(selector)
            if i.type == pafs.FileType.File and _is_audio(i.path) and not _hidden(i.path[len(path):])
        ]  # fmt: skip
        if not files:
            logger.warning("no audio or video files in %s", item)
        return [
            _Found(_uri(space, i.path), space, path, posixpath.relpath(i.path, path), i.size, i.mtime_ns)
            for i in sorted(files, key=lambda i: i.path)
        ]
    anchor, name = posixpath.split(path)
    if info.type == pafs.FileType.File and posixpath.splitext(name)[1].lower() in LIST_EXTENSIONS:
        return _read_list(fs, path, item)
    if info.type == pafs.FileType.File:
        return [_Found(_uri(space, path), space, anchor, name, info.size, info.mtime_ns)]
    problem = f"{item!r} does not exist" if info.type == pafs.FileType.NotFound else f"{item!r} is not a file"
    return [_Found(_uri(space, path), space, anchor, name, None, None, problem)]


def _read_list(fs: pyarrow.fs.FileSystem, path: str, item: str) -> list[_Found]:
    with fs.open_input_stream(path) as stream:
        text = stream.read().decode("utf-8-sig")
    base = posixpath.dirname(path) if "://" not in item else item.rsplit("/", 1)[0]
    found: list[_Found] = []
    for line in text.splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            found.extend(_expand_one(entry, listed_from=base))
    return found


def _filesystem(item: str, listed_from: str | None) -> tuple[pyarrow.fs.FileSystem, str, tuple[str, str]]:
    """The pyarrow filesystem of ``item``, its path there, and its (scheme, bucket or host)."""
    import pyarrow.fs as pafs

    if "://" not in item and listed_from is not None and "://" in listed_from and not os.path.isabs(item):
        item = f"{listed_from}/{item}"
    if "://" not in item:
        local = item if listed_from is None else os.path.join(listed_from, item)
        return pafs.LocalFileSystem(), os.path.abspath(local).replace(os.sep, "/"), ("", "")
    scheme, rest = item.split("://", 1)
    fs, path = pafs.FileSystem.from_uri(item)
    if scheme == "file":
        return fs, path, ("", "")
    return fs, path, (scheme, rest.split("/", 1)[0])


def _uri(space: tuple[str, str], path: str) -> str:
    """The string a worker opens: a local path as it is, anything else as a URI."""
    scheme, bucket = space
    if not scheme:
        return path if os.sep == "/" else path.replace("/", os.sep)
    return f"{scheme}://{path}" if path.startswith(bucket) else f"{scheme}://{bucket}/{path.lstrip('/')}"


def _is_audio(path: str) -> bool:
    return posixpath.splitext(path)[1].lower() in AUDIO_EXTENSIONS


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/") if part)


def _keyed(found: list[_Found]) -> list[Input]:
    """Keys relative to the common ancestor of every anchor (per filesystem), extensions kept where needed."""
    spaces = sorted({f.space for f in found})
    roots = {space: _common([f.anchor for f in found if f.space == space]) for space in spaces}
    keys: list[str] = []
    for f in found:
        under = posixpath.relpath(posixpath.join(f.anchor, f.relative), roots[f.space])
        if len(spaces) > 1:
            under = posixpath.join(*(part for part in f.space if part), under) if any(f.space) else under
        keys.append(under)
    stems = [posixpath.splitext(k)[0] for k in keys]
    clashes = Counter(stems)
    return [
        Input(f.uri, stem if clashes[stem] == 1 else key, f.size, f.mtime_ns, f.problem)
        for f, key, stem in zip(found, keys, stems)
    ]


def _common(paths: Iterable[str]) -> str:
    parts = [p.rstrip("/").split("/") for p in paths]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) or "/"

