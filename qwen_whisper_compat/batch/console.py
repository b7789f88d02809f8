"""What the driver of a batch job shows and hears while Ray runs: the progress bar, Ctrl-C, and Ray Data's
per-block tracebacks kept out of the way (the driver reports those inputs itself)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterable
from typing import Any, final

from qwen_whisper_compat.batch.store import Row

logger = logging.getLogger("qwen_whisper_compat.batch")


@final
class CtrlC:
    """Remembers a Ctrl-C (SIGINT) while Ray runs, so that one Ray's own code swallows still stops the job at
    the next result. The interrupt is raised at once, as Python's own handler does, where Ray lets it."""

    def __init__(self) -> None:
        self.pressed = False
        self._previous: Any = None

    def __enter__(self) -> CtrlC:
        # a process started with SIGINT ignored (a shell's background job) keeps ignoring it, as is the rule
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.pressed = True
        if callable(self._previous):
            self._previous(signum, frame)
        else:
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed since the job started."""
        if self.pressed:
            raise KeyboardInterrupt


class Progress:
    """A tqdm bar of files, with done / failed / skipped and audio hours transcribed per hour of wall time."""

    def __init__(self, total: int, rows: Iterable[Row], enabled: bool) -> None:
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        for row in rows:
            self.counts[row.status] = self.counts.get(row.status, 0) + 1
        self.audio = 0.0
        self.started = time.perf_counter()
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=sum(self.counts.values()), unit="file", dynamic_ncols=True)
            self._postfix()

    def update(self, status: str, audio_seconds: float) -> None:
        """One more input ended with ``status``, after ``audio_seconds`` of audio."""
        self.counts[status] = self.counts.get(status, 0) + 1
        self.audio += audio_seconds
        if self.bar is not None:
            self.bar.update(1)
            self._postfix()

    def _postfix(self) -> None:
        rate = self.audio / max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(
            f"done {self.counts['done']}, failed {self.counts['failed']}, skipped {self.counts['skipped']}, "
            f"{rate:.1f} audio h/h"
        )

    def close(self) -> None:
        """Leave the bar where it ended."""
        if self.bar is not None:
            self.bar.close()


class Quiet:
    """Raises a logger's level to CRITICAL for a while: Ray Data logs a traceback for each block it drops,
    and the driver reports those inputs itself."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name)
        self.level = self.logger.level
        if not logger.isEnabledFor(logging.DEBUG):
            self.logger.setLevel(logging.CRITICAL)

    def restore(self) -> None:
        """The logger's level as it was."""
        self.logger.setLevel(self.level)
