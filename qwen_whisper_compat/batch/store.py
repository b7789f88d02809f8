"""The output folder of a batch job: outputs written atomically, the journal that makes reruns resume, the
manifest, and the lock that keeps two jobs out of one folder.

Only the driver writes here, one input at a time: its outputs (each through a temporary file renamed over
the target), then one journal line (flushed and synced) that records each output's size and SHA-256. A
rerun skips an input when the journal says it was done with the same options, the input has not changed
since, and every output it recorded is still there with that size and hash; a killed job therefore loses
at most the input it was writing, and never leaves a half-written file under an output's name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, final

from qwen_whisper_compat.batch.inputs import Input
from qwen_whisper_compat.errors import BatchError

if TYPE_CHECKING:
    from filelock import BaseFileLock

logger = logging.getLogger("qwen_whisper_compat.batch")

#: Hidden folder in the output folder with the journal and the lock.
STATE_DIR = ".qwen-whisper-batch"
MANIFEST_PARQUET = "manifest.parquet"
MANIFEST_JSONL = "manifest.jsonl"

Status = Literal["done", "skipped", "failed", "pending"]


@dataclass(frozen=True)
class Row:
    """One input's line in the manifest."""

    #: The input, as the worker opened it (absolute path or URI).
    path: str
    #: ``done`` (transcribed now), ``skipped`` (done by an earlier run, outputs verified), ``failed``, or
    #: ``pending`` (not reached: the job was interrupted).
    status: Status
    #: Why it failed (``AudioLoadError: ...``); ``None`` otherwise.
    error: str | None = None
    #: Seconds of audio, the language detected (or given), seconds the worker took.
    duration: float | None = None
    language: str | None = None
    seconds: float | None = None
    #: The files written for it, as paths under the output folder.
    outputs: tuple[str, ...] = ()
    #: ``host:pid`` of the worker process that transcribed it, and its Ray node's id.
    worker: str | None = None
    node: str | None = None
    #: Attempts made: more than 1 when a worker process died while transcribing it.
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["outputs"] = list(self.outputs)
        return row


@dataclass
class _Done:
    """A journal entry: an input done, with what was written for it."""

    key: str
    source: str
    size: int | None
    mtime_ns: int | None
    fingerprint: str
    outputs: dict[str, list[Any]] = field(default_factory=dict)  # path under the folder -> [size, sha256]
    duration: float | None = None
    language: str | None = None
    seconds: float | None = None
    worker: str | None = None
    node: str | None = None
    #: The run that wrote it (each job gets a new id).
    run: str = ""


@final
class OutputFolder:
    """The output folder of one job, locked for its duration (use as a context manager)."""

    def __init__(self, folder: str | os.PathLike[str], fingerprint: str) -> None:
        self.root = Path(folder)
        self.fingerprint = fingerprint
        self.run = uuid.uuid4().hex
        self._state = self.root / STATE_DIR
        self._journal: Any = None
        self._lock: BaseFileLock | None = None

    def __enter__(self) -> OutputFolder:
        try:
            self._state.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BatchError(f"cannot create the output folder {str(self.root)!r}: {e.strerror or e}; "
                             "pass another --output_dir") from e  # fmt: skip
        from filelock import FileLock, Timeout

        lock = FileLock(self._state / "lock")
        try:
            lock.acquire(timeout=0)
        except Timeout as e:
            raise BatchError(
                f"another qwen-whisper-batch job is writing into {str(self.root)!r}; wait for it to finish "
                "or pass another --output_dir"
            ) from e
        self._lock = lock
        self._journal = open(self._state / "journal.jsonl", "a", encoding="utf-8")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------------------------ resuming
    def finished(self, inputs: Sequence[Input]) -> dict[str, Row]:
        """The inputs an earlier run finished, verified, as ``skipped`` rows by key."""
        entries = self._entries()
        skipped: dict[str, Row] = {}
        for item in inputs:
            entry = entries.get(item.key)
            if entry is not None and entry.run != self.run and self._still_valid(entry, item):
                skipped[item.key] = self._row(item, entry, "skipped")
        return skipped

    def written_now(self, inputs: Sequence[Input]) -> dict[str, Row]:
        """The inputs this run journaled, as ``done`` rows by key: after an interruption, those whose journal
        line was synced just before the interruption reached the driver's own bookkeeping."""
        entries = self._entries()
        found = ((item, entries.get(item.key)) for item in inputs)
        return {item.key: self._row(item, entry, "done") for item, entry in found if entry and entry.run == self.run}

    def _entries(self) -> dict[str, _Done]:
        entries: dict[str, _Done] = {}
        path = self._state / "journal.jsonl"
        if path.is_file():
            with open(path, encoding="utf-8") as journal:
                for line in journal:
                    with contextlib.suppress(ValueError, TypeError):  # a torn last line of a killed job
                        done = _Done(**json.loads(line))
                        entries[done.key] = done
        return entries

    def _row(self, item: Input, entry: _Done, status: Status) -> Row:
        return Row(
            item.uri, status, duration=entry.duration, language=entry.language, seconds=entry.seconds,
            outputs=tuple(str(self.root / name) for name in entry.outputs), worker=entry.worker, node=entry.node,
        )  # fmt: skip

    def _still_valid(self, entry: _Done, item: Input) -> bool:
        if entry.fingerprint != self.fingerprint or entry.source != item.uri or not entry.outputs:
            return False
        if item.size is None or (entry.size, entry.mtime_ns) != (item.size, item.mtime_ns):
            return False
        for name, (size, digest) in entry.outputs.items():
            file = self.root / name
            try:
                if file.stat().st_size != size or _sha256(file.read_bytes()) != digest:
                    return False
            except OSError:
                return False
        return True

    # ------------------------------------------------------------------------------------- writing
    def write(self, item: Input, files: Mapping[str, bytes], row: Row) -> Row:
        """Write one input's output ``files`` (name -> bytes) beside its key, then journal it; the done row."""
        folder = (self.root / item.key).parent
        written: dict[str, list[Any]] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(files.items()):
            target = folder / name
            write_atomically(target, data)
            written[target.relative_to(self.root).as_posix()] = [len(data), _sha256(data)]
        entry = _Done(
            item.key, item.uri, item.size, item.mtime_ns, self.fingerprint, written,
            row.duration, row.language, row.seconds, row.worker, row.node, self.run,
        )  # fmt: skip
        self._journal.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        return replace(row, outputs=tuple(str(self.root / name) for name in written))

    def write_manifest(self, rows: Sequence[Row]) -> tuple[Path, Path]:
        """``manifest.parquet`` and ``manifest.jsonl`` with one row per input, each replaced atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        lines = "".join(json.dumps(row.as_dict(), ensure_ascii=False) + "\n" for row in rows)
        jsonl = self.root / MANIFEST_JSONL
        write_atomically(jsonl, lines.encode("utf-8"))
        table = pa.Table.from_pylist([row.as_dict() for row in rows], schema=_manifest_schema())
        parquet = self.root / MANIFEST_PARQUET
        with _temporary(parquet) as temporary:
            pq.write_table(table, temporary)
        return parquet, jsonl


def _manifest_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("path", pa.string()), ("status", pa.string()), ("error", pa.string()), ("duration", pa.float64()),
        ("language", pa.string()), ("seconds", pa.float64()), ("outputs", pa.list_(pa.string())),
        ("worker", pa.string()), ("node", pa.string()), ("attempts", pa.int32()),
    ])  # fmt: skip


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, so that ``path`` is never partial."""
    with _temporary(path) as temporary, open(temporary, "wb") as file:
        file.write(data)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[str]:
    """A temporary file name beside ``path``, renamed over ``path`` on success and removed on failure."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
