"""The Ray Data actor of a batch job: one loaded model per worker process, many inputs each.

It reads each input itself (a local path, or a URI through pyarrow's filesystems), transcribes it as
``qwen-whisper`` does, and runs whisper's writers into a temporary folder; what it returns per input is
the writers' bytes, so the driver's files are byte for byte the CLI's. A failing input is a ``failed``
row with the error's type and message; only the death of the process itself loses the input (the driver
retries it).
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
COLUMNS = ("index", "status", "error", "duration", "language", "seconds", "names", "data", "worker", "node")


class Worker:
    """Loads the model once; ``__call__`` transcribes a batch of ``{index, uri, stem}`` rows.

    Args:
        load: Keywords of :func:`~qwen_whisper_compat.model.load_model`, the model name as ``name``.
        transcribe: Keywords of :func:`~qwen_whisper_compat.transcribe.transcribe`.
        output_format: ``all``, a whisper format or a plugin's.
        writer_args: The subtitle writers' word-level line options.
    """

    def __init__(
        self, load: Mapping[str, Any], transcribe: Mapping[str, Any], output_format: str, writer_args: Mapping[str, Any]
    ) -> None:
        from qwen_whisper_compat.model import load_model

        load = dict(load)
        self.model = load_model(load.pop("name"), **load)
        self.transcribe = {**transcribe, "verbose": None}  # a worker prints nothing
        self.output_format = output_format
        self.writer_args = dict(writer_args)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.node = _node_id()

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
        rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for index, uri, stem in zip(batch["index"], batch["uri"], batch["stem"]):
            for name, value in zip(COLUMNS, self._one(int(index), str(uri), str(stem))):
                rows[name].append(value)
        return rows

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
