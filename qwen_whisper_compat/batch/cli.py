"""``qwen-whisper-batch``: ``qwen-whisper`` over a whole corpus, on Ray.

Every ``qwen-whisper`` flag means what it means there (outputs are byte for byte the same); INPUT may also
be a folder, a list file or a URI, and the batch flags size the workers and pick the cluster. Prints a
progress bar, then one ``Failed PATH: ERROR`` line per failed input and a summary, on stderr. Exit status:
0 when every input is done or skipped, 1 when any failed or the job could not start, 2 for a usage error,
130 when interrupted (what was finished stays; run the same command again to go on).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from qwen_whisper_compat import cli
from qwen_whisper_compat.errors import QwenWhisperError, UnknownModelError

PROG = "qwen-whisper-batch"


def build_parser() -> argparse.ArgumentParser:
    """``qwen-whisper``'s parser with the batch flags."""
    p = cli.build_parser(PROG, "Transcribe a corpus with Qwen3-ASR on Ray: qwen-whisper's flags, many workers.")
    for action in p._actions:
        if action.dest == "audio":
            action.help = "audio/video files, folders (recursive), list files (.txt, one path or URI a line) or URIs"
            action.metavar = "INPUT"
        elif action.dest == "output_dir":
            action.required = True
            action.default = None
            action.help = "folder for the outputs (mirroring the inputs' folders) and the manifest"
    batch = p.add_argument_group("batch options")
    batch.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes, one model each (default: the cluster's CPUs over --threads-per-worker, "
                            "bounded by its GPUs and memory)")
    batch.add_argument("--threads-per-worker", "--threads_per_worker", dest="threads_per_worker", type=int,
                       default=None, metavar="T", help="CPU threads of each worker (default: --threads if given, else 2)")
    batch.add_argument("--gpus-per-worker", "--gpus_per_worker", dest="gpus_per_worker", type=float, default=None,
                       metavar="G",
                       help="GPUs of each worker (default: 1 when the cluster has GPUs, else 0)")
    batch.add_argument("--address", type=str, default=None,
                       help="Ray cluster to run on: auto, ray://HOST:10001, HOST:6379 (default: $RAY_ADDRESS, "
                            "else a local cluster for this job)")
    batch.add_argument("--retries", type=int, default=2, metavar="N",
                       help="times an input is tried again after its worker process died on it, before it fails")
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args: dict[str, Any] = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("qwen_whisper_compat.hub").setLevel(logging.INFO)
    batch = {name: args.pop(name) for name in ("workers", "threads_per_worker", "gpus_per_worker", "address", "retries")}
    job = cli.plan(parser, args)

    from qwen_whisper_compat.batch.job import ray_module, run_job

    try:
        ray_module()
    except QwenWhisperError as e:
        return _error(str(e))
    problem = cli.output_dir_problem(job.output_dir)
    if problem:
        return _error(problem)
    try:
        report = run_job(job, progress=job.transcribe.get("verbose") is not False, **batch)
    except UnknownModelError as e:
        parser.error(str(e))
    except (QwenWhisperError, OSError) as e:
        return _error(str(e))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished work is kept: run the same command again to go on", file=sys.stderr)
        return 130
    for row in report.failed:
        print(f"Failed {row.path}: {row.error}", file=sys.stderr)
    print(
        f"{report.count('done')} done, {report.count('skipped')} skipped, {report.count('failed')} failed "
        f"in {report.seconds:.1f} s; manifest {report.manifest_parquet}",
        file=sys.stderr,
    )
    return 1 if report.failed else 0


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
