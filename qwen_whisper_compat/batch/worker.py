"""The Ray Data actor of a batch job: one loaded model per worker process, many inputs each.

It reads each input itself (a local path, or a URI through pyarrow's filesystems), transcribes it as
``qwen-whisper`` does, and runs whisper's writers into a temporary folder; what it returns per input is
the writers' bytes, so the driver's files are byte for byte the CLI's. A failing input is a ``failed``
row with the error's type and message. The death of the process itself loses the input: Ray Data restarts
the worker and retries its task, and the job's :class:`Attempts` ledger ends that after ``max_attempts``.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

logger = logging.getLogger("qwen_whisper_compat.batch")

#: Columns of the rows a worker returns.
COLUMNS = ("index", "status", "error", "duration", "language", "seconds", "names", "data", "worker", "node", "attempts")


class Attempts:
    """How many times each input was started and not finished, over every worker process of a job: one Ray
    actor per job (the driver starts it). A worker that dies on an input takes its count with it, so the
    count of an input that kills its worker grows with each retry, while one that ends is forgotten."""

    def __init__(self) -> None:
        self._started: dict[str, int] = {}

    def start(self, uri: str) -> int:
        """Count a start of ``uri``; returns how many starts it has had without an end, this one included."""
        self._started[uri] = self._started.get(uri, 0) + 1
        return self._started[uri]

    def finish(self, uri: str) -> None:
        """``uri`` ended (done or failed) in a living worker."""
        self._started.pop(uri, None)


class Worker:
    """Loads the model once; ``__call__`` transcribes a batch of ``{index, uri, stem}`` rows.

    Args:
        load: Keywords of :func:`~qwen_whisper_compat.model.load_model`, the model name as ``name``.
        transcribe: Keywords of :func:`~qwen_whisper_compat.transcribe.transcribe`.
        output_format: ``all``, a whisper format or a plugin's.
        writer_args: The subtitle writers' word-level line options.
        attempts: The job's :class:`Attempts` actor (``None``: no bound, as outside a job).
        max_attempts: Starts of one input before it is a ``failed`` row instead of being tried again.
    """

    def __init__(
        self, load: Mapping[str, Any], transcribe: Mapping[str, Any], output_format: str,
        writer_args: Mapping[str, Any], attempts: Any = None, max_attempts: int = 3,
    ) -> None:  # fmt: skip
        from qwen_whisper_compat.model import load_model

        load = dict(load)
        self.model = load_model(load.pop("name"), **load)
        self.transcribe = {**transcribe, "verbose": None}  # a worker prints nothing
        self.output_format = output_format
        self.writer_args = dict(writer_args)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.node = _node_id()
        self.attempts = attempts
        self.max_attempts = max_attempts

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for index, uri, stem in zip(batch["index"], batch["uri"], batch["stem"]):
            attempt = self._ledger("start", str(uri)) or 1
            if attempt > self.max_attempts:  # it killed this worker every time: never again
                row: tuple[Any, ...] = (int(index), "failed", died_error(attempt - 1), None, None, None, [], [])
                row += (self.worker, self.node, attempt - 1)
            else:
                row = (*self._one(int(index), str(uri), str(stem)), attempt)
            self._ledger("finish", str(uri))
            for name, value in zip(COLUMNS, row):
                rows[name].append(value)
        return rows

    def _ledger(self, method: str, uri: str) -> int | None:
        if self.attempts is None:
            return None
        import ray

        result = ray.get(getattr(self.attempts, method).remote(uri))
        return None if result is None else int(result)

    def _one(self, index: int, uri: str, stem: str) -> tuple[Any, ...]:
        from qwen_whisper_compat.transcribe import transcribe
        from qwen_whisper_compat.utils import get_writer

        started = time.perf_counter()
        duration: float | None = None
        language: str | None = None
        try:
            samples = _read(uri)
            duration = len(samples) / 16000
            result = transcribe(self.model, samples, **self.transcribe)
            language = result["language"]
            with tempfile.TemporaryDirectory(prefix="qwen-whisper-batch-") as folder:
                # the writers name outputs after the audio file: give them the stem the driver keyed
                get_writer(self.output_format, folder)(result, f"{stem}.audio", **self.writer_args)
                names = sorted(os.listdir(folder))
                data = [_read_bytes(os.path.join(folder, name)) for name in names]
        except Exception as e:  # one bad input is a failed row, never the end of the job
            logger.debug("failure details for %s", uri, exc_info=True)
            error = f"{type(e).__name__}: {e}"
            seconds = time.perf_counter() - started
            return index, "failed", error, duration, language, seconds, [], [], self.worker, self.node
        seconds = time.perf_counter() - started
        return index, "done", None, duration, language, seconds, names, data, self.worker, self.node

    def __del__(self) -> None:
        model = getattr(self, "model", None)
        if model is not None:
            model.close()


def died_error(times: int) -> str:
    """The ``failed`` row's error of an input whose worker process died ``times`` times while on it."""
    return (
        f"WorkerDiedError: the worker process died while transcribing it, {times} times "
        "(killed, or out of memory: try fewer --workers or a smaller --model)"
    )


def _node_id() -> str:
    """The Ray node this worker runs on (``""`` outside Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 - only a label for the manifest
        return ""


def _read(uri: str) -> np.ndarray:
    """16 kHz mono samples of a local path or a pyarrow-filesystem URI."""
    from qwen_whisper_compat.audio import load_audio

    if "://" not in uri:
        return load_audio(uri)
    import pyarrow.fs as pafs

    from qwen_whisper_compat.errors import AudioLoadError

    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        with fs.open_input_file(path) as file:
            data = file.read()
    except (OSError, ValueError) as e:
        raise AudioLoadError(f"cannot read {uri}: {e}") from e
    return load_audio(data)


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()
