"""Corpus transcription on Ray: ``qwen-whisper-batch``, and :func:`transcribe_corpus` for the same job in Python.

Needs the ``[ray]`` extra (``pip install "qwen-whisper-compat[ray]"``); importing this package does not
import Ray, and nothing in the rest of the package imports this one.

Example::

    from qwen_whisper_compat.batch import transcribe_corpus

    report = transcribe_corpus(["/data/podcasts"], "/data/subtitles", model="qwen3-asr-0.6b",
                               output_format="srt", language="en")
    print(report.count("done"), [row.error for row in report.failed])
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from qwen_whisper_compat.batch.job import BatchReport, Sizing, run_job
from qwen_whisper_compat.batch.store import Row

__all__ = ["BatchReport", "Row", "Sizing", "transcribe_corpus"]


def transcribe_corpus(
    inputs: str | Sequence[str],
    output_dir: str,
    *,
    model: str = "turbo",
    output_format: str = "all",
    workers: int | None = None,
    threads_per_worker: int | None = None,
    gpus_per_worker: float | None = None,
    address: str | None = None,
    retries: int = 2,
    progress: bool = False,
    device: str = "auto",
    download_root: str | None = None,
    aligner: str | None = None,
    precision: str | None = None,
    local_files_only: bool = False,
    segment_max_seconds: float = 10.0,
    segment_max_width: int = 84,
    highlight_words: bool = False,
    max_line_width: int | None = None,
    max_line_count: int | None = None,
    max_words_per_line: int | None = None,
    **transcribe_options: Any,
) -> BatchReport:
    """Transcribe every input into ``output_dir``, as ``qwen-whisper-batch`` does; rerunning resumes.

    Args:
        inputs: Audio/video files, folders (searched recursively), list files (``.txt``: one path or URI a
            line) or URIs pyarrow reads (``file://``, ``s3://``, ``gs://``).
        output_dir: Where outputs go, mirroring the inputs' relative paths, with ``manifest.parquet`` and
            ``manifest.jsonl``.
        model, device, download_root, aligner, precision, local_files_only: as
            :func:`~qwen_whisper_compat.load_model` (``download_root`` is each node's model cache).
        output_format: ``all``, ``srt``, ``vtt``, ``txt``, ``tsv``, ``json`` or a plugin's format.
        workers: Worker processes, each with one model (default: the cluster's CPUs over
            ``threads_per_worker``, bounded by its GPUs and memory).
        threads_per_worker: CPU threads of each worker (default 2).
        gpus_per_worker: GPUs each worker takes (default: 1 when the cluster has GPUs, else 0).
        address: The Ray cluster (``"auto"``, ``"ray://host:10001"``); default ``RAY_ADDRESS``, else a
            local cluster started for this job. A session already started by ``ray.init`` is used as it is.
        retries: Times an input is tried again after its worker process died on it, before it fails.
        progress: Show a progress bar (files done / failed, audio hours per hour).
        highlight_words, max_line_width, max_line_count, max_words_per_line: the subtitle writers' options.
        transcribe_options: Keywords of :func:`~qwen_whisper_compat.transcribe` (``language``,
            ``word_timestamps``, ``initial_prompt``, ``temperature``, ...).

    Returns:
        The report: one :class:`Row` per input (``done``, ``skipped``, ``failed`` with its error).

    Raises:
        MissingDependencyError: Ray is not installed.
        BatchError: The output folder or the cluster cannot be used, or there is no input.
        QwenWhisperError: The model cannot load.
        TypeError: A keyword :func:`~qwen_whisper_compat.transcribe` does not take.
    """
    from qwen_whisper_compat import options as opts
    from qwen_whisper_compat.cli import CliJob
    from qwen_whisper_compat.segments import SegmentLimits
    from qwen_whisper_compat.transcribe import transcribe

    named = [p for p in inspect.signature(transcribe).parameters if p not in ("model", "audio", "decode_options")]
    opts.check_keywords(
        [k for k in transcribe_options if k not in named], (*opts.DECODING_FIELDS, *opts.EXTRA_OPTIONS), "transcribe"
    )
    job = CliJob(
        audio=(inputs,) if isinstance(inputs, str) else tuple(inputs),
        output_dir=output_dir,
        output_format=output_format,
        load={
            "name": model, "device": device, "download_root": download_root, "aligner": aligner,
            "threads": threads_per_worker or 0, "local_files_only": local_files_only,
            "segment_limits": SegmentLimits(segment_max_seconds, segment_max_width), "precision": precision,
        },
        transcribe=transcribe_options,
        writer_args={
            "highlight_words": highlight_words, "max_line_count": max_line_count,
            "max_line_width": max_line_width, "max_words_per_line": max_words_per_line,
        },
    )  # fmt: skip
    return run_job(
        job, workers=workers, threads_per_worker=threads_per_worker, gpus_per_worker=gpus_per_worker,
        address=address, retries=retries, progress=progress,
    )  # fmt: skip
