"""The one loaded model every Wyoming connection shares: its thread, its live-stream slots, its ``info``.

This module owns running blocking model calls off the event loop (one thread, so calls from several
connections never contend inside the engine), handing out the model's live-stream slots in turn with a
bounded number of waiting clients, and describing the model as Wyoming's ``info``. It knows nothing of
connections or events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from qwen_whisper_compat import UnsupportedOptionError, Whisper
from qwen_whisper_compat.tokenizer import TO_LANGUAGE_CODE

logger = logging.getLogger("qwen_whisper_wyoming.service")

T = TypeVar("T")

QWEN = Attribution(name="Qwen team, Alibaba", url="https://github.com/QwenLM/Qwen3-ASR")
PROGRAM = Attribution(name="qwen-whisper-compat", url="https://pypi.org/project/qwen-whisper-compat/")


class Busy(Exception):
    """Every live-stream slot is taken and ``max_queue`` transcriptions already wait for one."""


@dataclass(frozen=True)
class Settings:
    """What every transcription on this server uses unless the client's ``transcribe`` says otherwise.

    Attributes:
        model_name: The name ``info`` lists (the ``--model`` given).
        language: Whisper code of the default language; ``None`` detects it.
        initial_prompt: Context text for every transcription (names, terms, a style).
        max_sessions: Transcriptions in progress at once (the model's live-stream slots).
        max_queue: Clients that may wait for a slot; one more is refused.
    """

    model_name: str
    language: str | None = None
    initial_prompt: str | None = None
    max_sessions: int = 1
    max_queue: int = 4


class Service:
    """The model, its single worker thread and its slots. Use from one event loop.

    Args:
        model: The loaded model; the caller keeps ownership and closes it after :meth:`shutdown`.
        settings: See :class:`Settings`.
        version: This server's version, for ``info``.
    """

    def __init__(self, model: Whisper, settings: Settings, version: str) -> None:
        if settings.max_sessions < 1:
            raise ValueError(f"max_sessions must be 1 or more, got {settings.max_sessions}")
        if settings.max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {settings.max_queue}")
        self.model = model
        self.settings = settings
        self.version = version
        self.languages = frozenset(model.languages)
        model.max_live_streams = settings.max_sessions
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen-whisper-wyoming")
        self._slots = asyncio.Semaphore(settings.max_sessions)
        self._admitted = 0
        #: Transcriptions holding a slot.
        self.active = 0

    @property
    def waiting(self) -> int:
        """Admitted transcriptions that wait for a slot."""
        return self._admitted - self.active

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` on the model's thread, after the jobs submitted before it."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job`` on the model's thread without waiting for it (clean-up from a cancelled task)."""
        return self._executor.submit(job)

    def admit(self) -> None:
        """Count one more transcription in (it then waits in :meth:`slot`); :meth:`leave` when it ends.

        Raises:
            Busy: ``max_sessions`` transcriptions run and ``max_queue`` wait already.
        """
        settings = self.settings
        if self._admitted >= settings.max_sessions + settings.max_queue:
            raise Busy(
                f"the server is busy: {self.active} transcription(s) in progress and {self.waiting} waiting "
                f"(qwen-whisper-wyoming --max-sessions {settings.max_sessions} --max-queue {settings.max_queue}); "
                "try again when one has finished"
            )
        self._admitted += 1

    def leave(self) -> None:
        """An admitted transcription ended (finished, failed or cancelled, before or after its slot)."""
        self._admitted -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the model's live-stream slots (admitted transcriptions wait here in turn)."""
        if self._slots.locked():
            logger.debug("a transcription waits for a slot (%d waiting)", self.waiting)
        async with self._slots:
            self.active += 1
            try:
                yield
            finally:
                self.active -= 1

    def resolve_language(self, language: str | None) -> str | None:
        """The whisper code the model transcribes for a client's language (``"en"``, ``"en-US"``,
        ``"zh_CN"``, ``"English"``); ``None`` or ``"auto"`` is the server's default.

        Raises:
            UnsupportedOptionError: A language the model does not transcribe.
        """
        if not language or language.lower() == "auto":
            return self.settings.language
        return resolve_language(language, self.languages)

    def info(self) -> Info:
        """Wyoming's ``info``: one ASR program with this model and its languages; streaming supported."""
        model = AsrModel(
            name=self.settings.model_name,
            description=f"Qwen3-ASR ({self.settings.model_name}) on ONNX Runtime and llama.cpp",
            attribution=QWEN,
            installed=True,
            languages=sorted(self.languages),
            version=None,
        )
        program = AsrProgram(
            name="qwen-whisper-compat",
            description="Qwen3-ASR speech-to-text, transcribed while the audio arrives",
            attribution=PROGRAM,
            installed=True,
            version=self.version,
            models=[model],
            supports_transcript_streaming=True,
        )
        return Info(asr=[program])

    def shutdown(self) -> None:
        """Wait for the model's thread to finish what it was given."""
        self._executor.shutdown(wait=True)


def resolve_language(language: str, known: Sequence[str] | frozenset[str]) -> str:
    """``language`` as one of the ``known`` whisper codes: the code itself, its part before a region
    (``"en-US"`` -> ``"en"``), or a language name whisper knows (``"English"``).

    Raises:
        UnsupportedOptionError: None of these is known.
    """
    text = language.strip().lower().replace("_", "-")
    for candidate in (text, text.split("-")[0], TO_LANGUAGE_CODE.get(text, "")):
        if candidate in known:
            return candidate
    raise UnsupportedOptionError(
        f"this model does not transcribe the language {language!r}; it knows {', '.join(sorted(known))} "
        "(or leave the language out to detect it)"
    )
