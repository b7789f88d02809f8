"""The one model every Wyoming connection shares: its loading, its thread and slots, its ``info``.

This module owns the model's side of the server: loading it behind a server that already listens
(:class:`~qwen_whisper_compat.serving.BackgroundModel`; while it loads, ``describe`` answers with what is
known and transcriptions are refused with :class:`~qwen_whisper_compat.serving.ModelLoading`), running blocking
model calls off the event loop on one thread (so calls from several connections never contend inside the
engine), handing out the model's live-stream slots in turn with a bounded number of waiting clients
(:class:`~qwen_whisper_compat.serving.Admission`), and describing the model as Wyoming's ``info``. It knows
nothing of connections or events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from qwen_whisper_compat import Whisper
from qwen_whisper_compat.serving import Admission, BackgroundModel
from qwen_whisper_compat.tokenizer import QWEN_LANGUAGES, to_language_code

logger = logging.getLogger("qwen_whisper_wyoming.service")

QWEN = Attribution(name="Qwen team, Alibaba", url="https://github.com/QwenLM/Qwen3-ASR")
PROGRAM = Attribution(name="qwen-whisper-compat", url="https://pypi.org/project/qwen-whisper-compat/")


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
    """The model (loaded or loading), its single thread and its slots. Use from one event loop.

    Args:
        model: The model, or one loading (:meth:`BackgroundModel.start` is the caller's); the caller keeps
            ownership and closes it after :meth:`shutdown`.
        settings: See :class:`Settings`.
        version: This server's version, for ``info``.
    """

    def __init__(self, model: Whisper | BackgroundModel[Whisper], settings: Settings, version: str) -> None:
        if settings.max_sessions < 1:
            raise ValueError(f"max_sessions must be 1 or more, got {settings.max_sessions}")
        self.loading = (
            model if isinstance(model, BackgroundModel) else BackgroundModel.loaded(model, settings.model_name)
        )
        self.settings = settings
        self.version = version
        #: The model's thread, with ``max_sessions`` slots and ``max_queue`` waiting places.
        self.admission = Admission(settings.max_queue, slots=settings.max_sessions, name="qwen-whisper-wyoming")
        self._model: Whisper | None = None

    @property
    def model(self) -> Whisper:
        """The loaded model (made ready for ``max_sessions`` live streams on first use).

        Raises:
            ModelLoading: It is not loaded yet, or could not be.
        """
        if self._model is None:
            model = self.loading.model
            model.max_live_streams = self.settings.max_sessions
            self._model = model
        return self._model

    @property
    def languages(self) -> frozenset[str]:
        """The model's languages; while it loads, those of the released models."""
        if self.loading.state == "ready":
            return frozenset(self.model.languages)
        return frozenset(QWEN_LANGUAGES)

    def resolve_language(self, language: str | None) -> str | None:
        """The whisper code the model transcribes for a client's language (``"en"``, ``"en-US"``,
        ``"zh_CN"``, ``"English"``); ``None`` or ``"auto"`` is the server's default.

        Raises:
            UnsupportedOptionError: A language the model does not transcribe.
        """
        if not language or language.lower() == "auto":
            return self.settings.language
        return to_language_code(language, self.languages)

    def info(self) -> Info:
        """Wyoming's ``info``: one ASR program with this model and its languages; streaming supported. While the
        model loads it is listed already (Home Assistant sets up only programs with installed models) with the
        languages of the released models, and its description says it is loading."""
        loading = "" if self.loading.state == "ready" else " (loading)"
        model = AsrModel(
            name=self.settings.model_name,
            description=f"Qwen3-ASR ({self.settings.model_name}) on ONNX Runtime and llama.cpp{loading}",
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
        """Finish what the model's thread is running and stop it."""
        self.admission.close()
