"""The driver of a batch job: list the inputs, skip what an earlier run finished, run the rest on a Ray
Data actor pool, write every result as it arrives, and end with a manifest of one row per input.

The same code runs on a laptop (no address: Ray starts a local cluster for the job) and on a cluster
(``address="auto"``, a ``ray://`` address, or ``RAY_ADDRESS``). Work goes out in windows of at most
:data:`WINDOW` inputs, in blocks of a few inputs each, so the driver's memory stays flat over millions of
files. A worker process that dies is restarted by Ray Data with its task (its defaults: actors restarted and
their tasks retried without end; Ray 2.64 takes no remote arguments to change that). The bound is ours: each
worker asks the job's :class:`~qwen_whisper_compat.batch.worker.Attempts` ledger before an input, so an input
whose worker died ``retries + 1`` times while on it ends as a ``failed`` row that says so instead of being
tried again; the inputs of a block that Ray still loses go out again one per block.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import posixpath
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_whisper_compat.batch.console import CtrlC, Progress, Quiet
from qwen_whisper_compat.batch.inputs import Input, expand
from qwen_whisper_compat.batch.store import OutputFolder, Row, Status
from qwen_whisper_compat.batch.worker import Attempts, Worker, died_error
from qwen_whisper_compat.errors import BatchError, MissingDependencyError, QwenWhisperError

if TYPE_CHECKING:
    from qwen_whisper_compat.cli import CliJob

logger = logging.getLogger("qwen_whisper_compat.batch")

INSTALL_HINT = 'pip install "qwen-whisper-compat[ray]"'
#: Inputs per Ray Data execution (the driver holds one window's rows at a time).
WINDOW = 20_000
#: Most inputs in one block: what a worker that dies can take down with it before the retry.
MAX_BLOCK = 16
#: Threads per worker when neither ``threads_per_worker`` nor ``--threads`` says.
DEFAULT_THREADS = 2


@dataclass(frozen=True)
class Sizing:
    """How many workers a job runs and what each one holds."""

    workers: int
    threads: int
    gpus: float
    #: Bytes of memory Ray reserves for each worker (0: none reserved).
    memory: int


@dataclass(frozen=True)
class BatchReport:
    """What a batch job did: one row per input, in input order, and where its manifest is."""

    rows: tuple[Row, ...]
    output_dir: Path
    manifest_parquet: Path
    manifest_jsonl: Path
    sizing: Sizing | None
    #: Wall seconds of the whole job, and of audio transcribed by this run.
    seconds: float
    audio_seconds: float
    interrupted: bool = False

    def count(self, status: Status) -> int:
        """How many inputs ended with ``status``."""
        return sum(1 for row in self.rows if row.status == status)

    @property
    def failed(self) -> list[Row]:
        """The rows of the inputs that failed."""
        return [row for row in self.rows if row.status == "failed"]


def ray_module() -> Any:
    """``ray`` (with Ray Data), or a :class:`MissingDependencyError` saying what to install."""
    try:
        import psutil  # noqa: F401 - sizes the workers' memory (_rss), part of the [ray] extra
        import ray
        import ray.data
    except ImportError as e:
        raise MissingDependencyError(
            f"qwen-whisper-batch runs on Ray, which is not installed: {INSTALL_HINT}"
        ) from e
    return ray


def run_job(
    job: CliJob,
    *,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    retries: int = 2,
    progress: bool = True,
) -> BatchReport:
    """Run ``job`` (what a ``qwen-whisper`` command line asks for) over its inputs on Ray.

    Raises:
        MissingDependencyError: Ray is not installed.
        BatchError: The output folder is unusable or taken, no input was given, or the cluster fails.
        QwenWhisperError: The model cannot load (checked on the driver before any input is read).
        KeyboardInterrupt: After the manifest of what was finished is written.
    """
    ray = ray_module()
    started = time.perf_counter()
    if retries < 0:
        raise BatchError(f"retries must be 0 or more, not {retries}")
    threads = threads_per_worker or int(job.load.get("threads") or 0) or DEFAULT_THREADS
    load = {**job.load, "threads": threads}
    memory = _check_model(load)  # our message for a model that cannot load, before any input is read
    inputs = expand(job.audio)
    if not inputs:
        raise BatchError("no inputs: give audio or video files, folders, list files (.txt) or URIs")
    fingerprint = _fingerprint(job)
    with OutputFolder(job.output_dir, fingerprint) as folder:
        rows: dict[str, Row] = dict(folder.finished(inputs))
        for item in inputs:
            if item.problem:
                rows[item.key] = Row(item.uri, "failed", error=f"FileNotFoundError: {item.problem}")
        pending = [item for item in inputs if item.key not in rows]
        logger.info("%d inputs: %d finished before, %d to transcribe", len(inputs), len(inputs) - len(pending),
                    len(pending))  # fmt: skip
        bar = Progress(len(inputs), rows.values(), enabled=progress)
        sizing: Sizing | None = None
        interrupted = False
        audio = 0.0
        try:
            if pending:
                own_cluster = _connect(ray, address)
                try:
                    sizing = size_workers(ray, workers, threads, gpus_per_worker, memory, len(pending))
                    logger.info("%d workers x %d threads", sizing.workers, sizing.threads)
                    runner = _Runner(ray, job, load, sizing, retries, folder, rows, bar)
                    try:
                        with CtrlC() as ctrl_c:
                            runner.ctrl_c = ctrl_c
                            for start in range(0, len(pending), WINDOW):
                                runner.run(pending[start:start + WINDOW])
                    finally:
                        runner.close()
                    audio = runner.audio_seconds
                finally:
                    if own_cluster:
                        ray.shutdown()
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            bar.close()
            unaccounted = [item for item in inputs if item.key not in rows]
            if unaccounted:  # only after an interruption: the journal is read again just then
                rows.update(folder.written_now(unaccounted))
            ordered = tuple(rows.get(item.key) or Row(item.uri, "pending") for item in inputs)
            parquet, jsonl = folder.write_manifest(ordered)
            report = BatchReport(
                ordered, Path(job.output_dir), parquet, jsonl, sizing, time.perf_counter() - started, audio,
                interrupted,
            )  # fmt: skip
            if interrupted:
                logger.warning("interrupted: %d of %d inputs finished; run the same command again to go on",
                               sum(1 for r in ordered if r.status in ("done", "skipped")), len(ordered))  # fmt: skip
    return report


def size_workers(
    ray: Any, workers: int | None, threads: int, gpus_per_worker: float | None, memory: int, inputs: int
) -> Sizing:
    """Workers for the cluster: its CPUs over ``threads`` (and its GPUs, and its memory), at most ``inputs``.

    The inputs reach the workers from the driver (``from_items``), so no Ray read task needs a CPU while the
    workers hold them all.
    """
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    largest_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus >= 1 else 0.0
    if gpus_per_worker > 0 and gpus < gpus_per_worker:
        raise BatchError(f"--gpus-per-worker {gpus_per_worker:g}: the Ray cluster has {gpus:g} GPUs")
    if largest_cpu < 1:
        raise BatchError("the Ray cluster has no CPU to run a worker on")
    threads = min(threads, int(largest_cpu))  # a worker must fit on one node
    largest_memory = max((n.get("memory", 0) for n in nodes), default=0)
    memory = int(min(memory, 0.8 * largest_memory)) if largest_memory else 0
    if workers is None:
        limits = [int(cpus // threads)]
        if gpus_per_worker > 0:
            limits.append(int(gpus // gpus_per_worker))
        if memory:
            limits.append(int(sum(n.get("memory", 0) for n in nodes) // memory))
        workers = min(limits)
    if workers < 1:
        raise BatchError(f"workers must be 1 or more, not {workers}")
    return Sizing(max(1, min(workers, inputs)), threads, gpus_per_worker, memory)


@dataclass
class _Runner:
    """Runs windows of inputs through the actor pool, writing each result as it comes back."""

    ray: Any
    job: CliJob
    load: dict[str, Any]
    sizing: Sizing
    retries: int
    folder: OutputFolder
    rows: dict[str, Row]
    bar: Progress
    audio_seconds: float = 0.0
    ctrl_c: CtrlC | None = None
    #: The job's :class:`~qwen_whisper_compat.batch.worker.Attempts` actor, started with the first window.
    attempts: Any = None

    def close(self) -> None:
        """Stop the attempts ledger (a session the caller started keeps running)."""
        if self.attempts is not None:
            self.ray.kill(self.attempts)
            self.attempts = None

    def run(self, window: Sequence[Input]) -> None:
        by_index = dict(enumerate(window))
        todo = list(by_index)
        block = max(1, min(MAX_BLOCK, len(todo) // (self.sizing.workers * 4)))
        for _ in range(2):  # the second pass: the inputs of blocks Ray lost, one input per block
            if not todo:
                return
            self._execute([(i, by_index[i]) for i in todo], block)
            todo = [i for i in todo if by_index[i].key not in self.rows]
            block = 1
        for i in todo:  # lost with its block twice: Ray gave up on the worker's task (it kept dying)
            item = by_index[i]
            self.rows[item.key] = Row(item.uri, "failed", attempts=2, error=died_error(2))
            self.bar.update("failed", 0.0)

    def _execute(self, items: Sequence[tuple[int, Input]], block: int) -> None:
        ray = self.ray
        if self.attempts is None:  # on the driver's node, taking no CPU from the workers
            self.attempts = ray.remote(num_cpus=0)(Attempts).remote()
        context = ray.data.DataContext.get_current()
        saved = (context.enable_progress_bars, context.max_errored_blocks, context.print_on_execution_start)
        context.enable_progress_bars = False
        context.max_errored_blocks = -1  # a block lost with its worker is retried by us, not fatal
        context.print_on_execution_start = False
        quiet = Quiet("ray.data")
        try:
            dataset = ray.data.from_items(
                [{"index": i, "uri": item.uri, "stem": posixpath.basename(item.key)} for i, item in items],
                override_num_blocks=math.ceil(len(items) / block),
            )
            # no extra remote arguments (deprecated, gone in Ray 2.64): Ray Data restarts a dead worker and
            # retries its task by default, and the Attempts ledger bounds that per input
            mapped = dataset.map_batches(
                Worker, batch_size=1, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(self.sizing.workers, len(items))),
                num_cpus=self.sizing.threads, num_gpus=self.sizing.gpus or None,
                memory=self.sizing.memory or None,
                fn_constructor_kwargs={
                    "load": self.load, "transcribe": self.job.transcribe,
                    "output_format": self.job.output_format, "writer_args": self.job.writer_args,
                    "attempts": self.attempts, "max_attempts": self.retries + 1,
                },
                runtime_env={"env_vars": worker_environment()},
            )  # fmt: skip
            index = dict(items)
            for result in mapped.iter_rows():
                item = index[int(result["index"])]
                if item.key not in self.rows:  # a retried task may deliver an input twice: write it once
                    self._record(item, result)
                if self.ctrl_c is not None:
                    self.ctrl_c.check()
        except Exception as e:  # the cluster itself failed (a node lost, a worker that cannot start)
            raise BatchError(f"the Ray job failed: {_cause(e)}") from e
        finally:
            quiet.restore()
            context.enable_progress_bars, context.max_errored_blocks, context.print_on_execution_start = saved

    def _record(self, item: Input, result: Mapping[str, Any]) -> None:
        duration = _optional_float(result["duration"])
        common = {
            "duration": duration, "language": result["language"] or None,
            "seconds": _optional_float(result["seconds"]), "worker": str(result["worker"]),
            "node": str(result["node"]) or None, "attempts": int(result["attempts"]),
        }  # fmt: skip
        if result["status"] != "done":
            self.rows[item.key] = Row(item.uri, "failed", error=str(result["error"]), **common)  # type: ignore[arg-type]
            self.bar.update("failed", 0.0)
            return
        files = {str(name): bytes(data) for name, data in zip(result["names"], result["data"])}
        self.rows[item.key] = self.folder.write(item, files, Row(item.uri, "done", **common))  # type: ignore[arg-type]
        self.audio_seconds += duration or 0.0
        self.bar.update("done", duration or 0.0)


def _check_model(load: Mapping[str, Any]) -> int:
    """Load the model once on the driver, so that one that cannot load fails the job with our message;
    returns the bytes it took (what each worker will hold), or 0 when that cannot be measured."""
    from qwen_whisper_compat.model import load_model

    kwargs = dict(load)
    before = _rss()
    model = load_model(kwargs.pop("name"), **kwargs)
    try:
        used = _rss() - before
    finally:
        model.close()
    # a worker also holds activations and the audio of the file it is on: leave room for them
    return int(used * 1.5) + (256 << 20) if before and used > 0 else 0


def _rss() -> int:
    """This process's resident memory in bytes, on every platform psutil knows (0 where it cannot tell)."""
    import psutil

    try:
        return int(psutil.Process().memory_info().rss)
    except psutil.Error:
        return 0


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to the cluster at ``address`` or ``RAY_ADDRESS``; with neither, start a local cluster for this
    job (``"local"``: never one that happens to run on this machine). Returns whether we started Ray."""
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    try:
        ray.init(
            address=target, include_dashboard=False, log_to_driver=logger.isEnabledFor(logging.DEBUG),
            logging_level=logging.WARNING,
        )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "a local cluster" if target == "local" else target
        raise BatchError(f"cannot start or reach Ray ({where}): {e}") from e
    return True


def _fingerprint(job: CliJob) -> str:
    """What decides the outputs: the model and every option but threads and device. A change redoes inputs."""
    load = {k: v for k, v in job.load.items() if k not in ("threads", "device")}
    transcribe = {k: v for k, v in job.transcribe.items() if k != "verbose"}
    text = json.dumps(
        {"load": load, "transcribe": transcribe, "format": job.output_format, "writer": job.writer_args},
        sort_keys=True, default=repr,
    )  # fmt: skip
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _cause(e: BaseException) -> str:
    """What went wrong under a Ray error: our own error if a worker raised one, else the innermost message's
    first line (Ray's messages carry the remote traceback after it)."""
    chain: list[BaseException] = []
    current: BaseException | None = e
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        nested = getattr(current, "cause", None)
        current = nested if isinstance(nested, BaseException) else current.__cause__
    for error in chain:
        if isinstance(error, QwenWhisperError):
            return f"{type(error).__name__}: {error}"
    for error in chain:  # an actor that died in __init__ carries its error only as text
        found = re.search(r"qwen_whisper_compat\.errors\.(\w+): (.+)", str(error))
        if found:
            return f"{found.group(1)}: {found.group(2).strip()}"
    for error in reversed(chain):
        text = str(error).strip()
        if text:
            return f"{type(error).__name__}: {text.splitlines()[0]}"
    return type(e).__name__


def worker_environment() -> dict[str, str]:
    """The driver's variables that decide where workers find models (``QWEN_WHISPER_*``, ``HF_*``), which Ray
    does not pass to worker processes by itself."""
    return {k: v for k, v in os.environ.items() if k.startswith(("QWEN_WHISPER_", "HF_", "HUGGINGFACE_"))}
