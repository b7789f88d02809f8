"""OpenVoiceOS / Neon speech-to-text plugin: Qwen3-ASR, offline, through ``qwen_whisper_compat``.

The host (``ovos-plugin-manager``) finds :class:`QwenWhisperSTT` by its ``opm.stt`` entry point and the
ready-made configurations in :data:`QwenWhisperSTTConfig` by its ``opm.stt.config`` entry point. Every
instance with the same model settings shares one loaded model per process (the listener, a language
classifier and a test harness may each build their own instance); calls into a shared model are serialised.

The host's language tag (``"en-us"``, ``"pt-BR"``, ``"fil-PH"``) is reduced to a whisper code (``"en"``,
``"pt"``, ``"tl"``) by :func:`qwen_whisper_compat.tokenizer.to_language_code`, as every host adapter does. A
language the model does not transcribe (or a tag naming no language) raises
:class:`qwen_whisper_compat.UnsupportedOptionError` (a ``ValueError``), unless the config says
``"unsupported_language": "detect"``: the model then detects the language itself. ``"auto"`` always lets the
model detect it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ovos_plugin_manager.templates.stt import STT  # type: ignore[import-untyped]

import qwen_whisper_compat as whisper
from qwen_whisper_compat import UnsupportedOptionError
from qwen_whisper_compat.audio import SAMPLE_RATE
from qwen_whisper_compat.tokenizer import QWEN_LANGUAGES, to_language_code

__version__ = "0.1.0"

__all__ = ["PluginOptions", "QwenWhisperSTT", "QwenWhisperSTTConfig", "__version__", "audio_samples"]

logger = logging.getLogger("ovos_stt_plugin_qwen_whisper")

_UNSUPPORTED_POLICIES = ("error", "detect")


@dataclass(frozen=True)
class PluginOptions:
    """The plugin's config dict, validated once (see the README for each key)."""

    model: str = "small"
    """A ``qwen_whisper_compat.load_model`` name (whisper's ``"small"``, ``"turbo"``, a Qwen name) or a folder."""
    device: str | None = None
    """``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when onnxruntime has it."""
    threads: int = 0
    """CPU threads (0 = all)."""
    aligner: bool | str = False
    """The forced aligner: ``False`` (none; speech-to-text needs no timestamps), ``True`` or a name/folder."""
    download_root: str | None = None
    """Model cache folder (default ``~/.cache/qwen-whisper-compat`` or ``QWEN_WHISPER_CACHE``)."""
    local_files_only: bool = False
    """Never download: fail with a message saying which checkpoint to put where."""
    initial_prompt: str = ""
    """Qwen3-ASR context text (names, terms), with the ``hotwords`` appended."""
    temperature: float | tuple[float, ...] = 0.0
    """Decoding temperature, or a fallback sequence as in whisper."""
    unsupported_language: str = "error"
    """``"error"``: a language the model lacks raises; ``"detect"``: the model detects the language instead."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PluginOptions:
        """Read and check the host's plugin config; unknown keys (``lang``, ``module``, ...) are left alone.

        ``use_cuda`` and ``cpu_threads`` are read as ``device="cuda"`` and ``threads``, so that a config written
        for ovos-stt-plugin-fasterwhisper works unchanged.

        Raises:
            ValueError: A value of the wrong kind, naming the key.
        """
        device = config.get("device") or ("cuda" if config.get("use_cuda") else None)
        threads = config.get("threads", config.get("cpu_threads", 0))
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
            raise ValueError(f"'threads' must be a non-negative integer, got {threads!r}")
        aligner = config.get("aligner", False)
        if not isinstance(aligner, (bool, str)):  # a bad config value is a ValueError, as documented above
            raise ValueError(f"'aligner' must be false, true or a model name/folder, got {aligner!r}")  # noqa: TRY004
        policy = config.get("unsupported_language", "error")
        if policy not in _UNSUPPORTED_POLICIES:
            raise ValueError(f"'unsupported_language' must be one of {_UNSUPPORTED_POLICIES}, got {policy!r}")
        temperature = config.get("temperature", 0.0)
        if isinstance(temperature, (list, tuple)):
            temperature = tuple(float(t) for t in temperature)
        else:
            temperature = float(temperature)
        return cls(
            model=str(config.get("model") or "small"),
            device=str(device) if device else None,
            threads=threads,
            aligner=aligner,
            download_root=config.get("download_root"),
            local_files_only=bool(config.get("local_files_only", False)),
            initial_prompt=_context_text(config.get("initial_prompt"), config.get("hotwords")),
            temperature=temperature,
            unsupported_language=policy,
        )

    @property
    def model_key(self) -> tuple[Any, ...]:
        """What identifies a loaded model: instances whose keys are equal share it."""
        return (self.model, self.device, self.threads, self.aligner, self.download_root, self.local_files_only)


def _context_text(initial_prompt: Any, hotwords: Any) -> str:
    words = [hotwords] if isinstance(hotwords, str) else list(hotwords or ())
    parts = [str(initial_prompt).strip()] if initial_prompt else []
    if words:
        parts.append(", ".join(str(w).strip() for w in words if str(w).strip()))
    return " ".join(p for p in parts if p)


@dataclass
class _SharedModel:
    model: whisper.Whisper
    lock: threading.Lock
    """Serialises inference: one decoder context per model."""


_models: dict[tuple[Any, ...], _SharedModel] = {}
_models_lock = threading.Lock()


def _shared_model(options: PluginOptions) -> _SharedModel:
    """The process-wide model for ``options``, loaded on first use (once, even when threads race)."""
    with _models_lock:
        shared = _models.get(options.model_key)
        if shared is None:
            logger.info("loading Qwen3-ASR model %r", options.model)
            model = whisper.load_model(
                options.model,
                device=options.device,
                download_root=options.download_root,
                aligner=options.aligner,
                threads=options.threads,
                local_files_only=options.local_files_only,
            )
            shared = _models[options.model_key] = _SharedModel(model, threading.Lock())
        return shared


def audio_samples(audio: Any) -> np.ndarray:
    """float32 16 kHz mono samples from what an OVOS host hands over.

    Accepts an ``AudioData`` (ovos-plugin-manager's or speech_recognition's: anything with
    ``get_raw_data(convert_rate, convert_width)``, which resamples to 16 kHz 16-bit), raw PCM16 16 kHz mono
    ``bytes`` (as audio transformers receive them), or a numpy array (int16 is scaled; float is taken as is).

    Raises:
        TypeError: Anything else.
    """
    if isinstance(audio, np.ndarray):
        if audio.dtype == np.int16:
            return audio.astype(np.float32) / 32768.0
        return np.asarray(audio, dtype=np.float32)
    if isinstance(audio, (bytes, bytearray, memoryview)):
        pcm = bytes(audio)
    elif callable(getattr(audio, "get_raw_data", None)):
        pcm = audio.get_raw_data(convert_rate=SAMPLE_RATE, convert_width=2)
    else:
        raise TypeError(f"expected AudioData, PCM16 bytes or a numpy array, got {type(audio).__name__}")
    return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


def _codes(tags: Iterable[str]) -> set[str]:
    """The whisper codes of the host's tags; tags that name no language are left out."""
    codes = set()
    for tag in tags:
        with contextlib.suppress(UnsupportedOptionError):
            codes.add(to_language_code(str(tag)))
    return codes


def _confidence(segments: Iterable[Mapping[str, Any]]) -> float:
    """exp of the token-weighted mean ``avg_logprob``: the geometric-mean token probability, in [0, 1]."""
    total = weight = 0.0
    for segment in segments:
        n = max(len(segment["tokens"]), 1)
        if math.isfinite(segment["avg_logprob"]):
            total += segment["avg_logprob"] * n
            weight += n
    return min(1.0, max(0.0, math.exp(total / weight))) if weight else 0.0


class _LanguagesProperty:
    """``available_languages``: on the class, every whisper code the released models transcribe (the host
    may ask before loading anything); on an instance, the codes of the loaded model's languages."""

    def __get__(self, instance: QwenWhisperSTT | None, owner: type | None = None) -> set[str]:
        shared = getattr(instance, "_shared", None)
        if shared is None:
            return set(QWEN_LANGUAGES)
        return set(shared.model.languages)


_warned_languages: set[str] = set()
_warned_lock = threading.Lock()


class QwenWhisperSTT(STT):  # type: ignore[misc]
    """The ``opm.stt`` plugin: ``execute(audio, language) -> str``, ``transcribe(audio, lang)`` with a
    confidence, ``detect_language(audio, valid_langs)`` and ``available_languages``.

    Args:
        config: The host's plugin config (see :class:`PluginOptions`; ``lang`` is the default language).

    Raises:
        ValueError: A bad config value.
        qwen_whisper_compat.ModelFolderError: The model cannot be found, downloaded or loaded.
    """

    available_languages = _LanguagesProperty()

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(dict(config or {}))
        self.options = PluginOptions.from_config(self.config)
        self._shared = _shared_model(self.options)

    @property
    def model(self) -> whisper.Whisper:
        """The loaded ``qwen_whisper_compat`` model, shared by every instance with the same model settings."""
        return self._shared.model

    def execute(self, audio: Any, language: str | None = None) -> str:
        """The text of ``audio`` in ``language`` (a host tag; ``None``: the plugin's ``lang``; ``"auto"``: detect).

        Raises:
            qwen_whisper_compat.UnsupportedOptionError: The model does not transcribe that language (and the
                config does not say ``"unsupported_language": "detect"``).
        """
        return self._recognize(audio, language)[0]

    def transcribe(self, audio: Any, lang: str | None = None) -> list[tuple[str, float]]:
        """``[(text, confidence)]``; the confidence is the geometric-mean token probability of the text."""
        return [self._recognize(audio, lang)]

    def detect_language(self, audio: Any, valid_langs: Iterable[str] | None = None) -> tuple[str, float]:
        """``(whisper code, probability)`` of the most likely language in the first 30 s, among ``valid_langs``
        (host tags; default: the model's languages), with the probabilities renormalised over those."""
        if self._detector is not None:  # the host bound an audio language detector: use it, as STT does
            return super().detect_language(audio, valid_langs)  # type: ignore[no-any-return]
        allowed = _codes(valid_langs) if valid_langs else self.available_languages
        samples = audio_samples(audio)
        with self._shared.lock:
            probs = self.model.recognizer.language_probs(samples)  # the first 30 s, as transcribe()
        candidates = {code: p for code, p in probs.items() if code in allowed} or probs
        total = sum(candidates.values()) or 1.0
        code = max(candidates, key=candidates.__getitem__)
        return code, candidates[code] / total

    def _recognize(self, audio: Any, language: str | None) -> tuple[str, float]:
        code = self._language_code(language)
        samples = audio_samples(audio)
        if samples.size == 0:
            return "", 0.0
        with self._shared.lock:
            result = self.model.transcribe(
                samples,
                language=code,
                temperature=self.options.temperature,
                initial_prompt=self.options.initial_prompt or None,
                condition_on_previous_text=False,
                # the aligner is loaded only when asked for; without it, chunks are cut at quiet points
                align_segments=self.model.has_aligner,
            )
        text = result["text"].strip()
        return text, _confidence(result["segments"]) if text else 0.0

    def _language_code(self, language: str | None) -> str | None:
        """The whisper code to transcribe in, or ``None`` to let the model detect the language."""
        tag = language or self.lang  # the host's setter, else the config's "lang", else the session's
        if not tag or str(tag).strip().lower() == "auto":
            return None
        try:
            return to_language_code(str(tag), self.available_languages)
        except UnsupportedOptionError as e:
            if self.options.unsupported_language != "detect":
                raise UnsupportedOptionError(
                    f'Qwen3-ASR model {self.options.model!r}: {e}. Set "unsupported_language": "detect" in the '
                    "plugin config to let the model detect the language instead."
                ) from e
        with _warned_lock:
            first = str(tag) not in _warned_languages
            _warned_languages.add(str(tag))
        if first:
            logger.warning("Qwen3-ASR does not transcribe %r; detecting the language instead", tag)
        return None


#: Ready-made configurations per language, for the host's setup tools (``opm.stt.config`` entry point).
QwenWhisperSTTConfig: dict[str, list[dict[str, Any]]] = {
    code: [
        {
            "model": model,
            "lang": code,
            "meta": {"priority": priority, "display_name": f"Qwen3-ASR {size} ({model})", "offline": True},
        }
        for model, size, priority in (("small", "0.6B", 50), ("turbo", "1.7B", 55))
    ]
    for code in QWEN_LANGUAGES
}
