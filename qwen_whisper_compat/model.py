"""The twin of ``whisper.model`` and of ``whisper.load_model``: the object scripts hold and call.

``load_model("turbo")`` resolves the name through :mod:`~.hub` (downloading and converting the official
checkpoints on first use), loads the ASR model and, when it is available, the forced aligner, and returns
a :class:`Whisper` whose ``transcribe``, ``detect_language`` and ``decode`` behave as whisper's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import TYPE_CHECKING, Any

from qwen_whisper_compat.decoding import decode as _decode
from qwen_whisper_compat.decoding import detect_language as _detect_language
from qwen_whisper_compat.errors import UnknownModelError, UnsupportedOptionError
from qwen_whisper_compat.recognizer import DEFAULT_TEMPERATURES, ModelDimensions, Recognizer
from qwen_whisper_compat.segments import SegmentLimits
from qwen_whisper_compat.transcribe import transcribe as _transcribe

if TYPE_CHECKING:
    from qwen_whisper_compat.results import SegmentDict
    from qwen_whisper_compat.streaming import Stream

logger = logging.getLogger("qwen_whisper_compat.model")

__all__ = ["Device", "ModelDimensions", "Whisper", "available_models", "load_model"]


class Device(str):
    """The device a model runs on: compares equal to ``"cpu"``/``"cuda"`` and has torch's ``.type``."""

    @property
    def type(self) -> str:
        return str(self)


class Whisper:
    """A loaded Qwen3-ASR model (and aligner) with whisper's model interface.

    Not a ``torch.nn.Module``: ``to()``, ``cuda()``, ``cpu()``, ``eval()`` and ``half()`` exist so that
    code written for whisper runs, and return the model itself (the device is chosen at load time).
    """

    transcribe = _transcribe
    detect_language = _detect_language
    decode = _decode

    def __init__(self, recognizer: Recognizer, name: str, segment_limits: SegmentLimits | None = None) -> None:
        #: The loaded model behind this face (see :mod:`~.recognizer`).
        self.recognizer = recognizer
        self.name = name
        self.segment_limits = segment_limits or SegmentLimits()
        self.dims: ModelDimensions = recognizer.dimensions()

    @property
    def device(self) -> Device:
        return Device(self.recognizer.device)

    @property
    def is_multilingual(self) -> bool:
        return len(self.recognizer.languages) > 1

    @property
    def num_languages(self) -> int:
        return len(self.recognizer.languages)

    @property
    def languages(self) -> tuple[str, ...]:
        """Whisper codes of the languages the model transcribes (ours; whisper's model has no such list)."""
        return self.recognizer.languages

    @property
    def has_aligner(self) -> bool:
        """Whether word timestamps (and aligner-timed segments) are available."""
        return self.recognizer.has_aligner

    @property
    def max_live_streams(self) -> int:
        """How many :meth:`stream` s may be open at once (1 unless raised; servers raise it). Each holds two
        KV sequences of the decoder; their calls take turns on the one model."""
        return self.recognizer.streams.limit

    @max_live_streams.setter
    def max_live_streams(self, n: int) -> None:
        self.recognizer.streams.limit = n

    def to(self, *args: Any, **kwargs: Any) -> Whisper:
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Whisper:
        return self

    def cpu(self) -> Whisper:
        return self

    def eval(self) -> Whisper:
        return self

    def half(self) -> Whisper:
        return self

    def stream(
        self,
        language: str | None = None,
        *,
        initial_prompt: str | None = None,
        word_timestamps: bool = False,
        condition_on_previous_text: bool = True,
        temperature: float | tuple[float, ...] = DEFAULT_TEMPERATURES,
        compression_ratio_threshold: float | None = 2.4,
        logprob_threshold: float | None = -1.0,
        no_speech_threshold: float | None = 0.6,
        **live: Any,
    ) -> Stream[SegmentDict]:
        """Transcribe audio while it arrives (see :mod:`~.streaming`): a stream whose final events carry
        whisper segment dicts, as ``transcribe()["segments"]`` holds them.

        ``**live`` takes the live options: ``step_seconds`` (audio between partials, 1.0),
        ``partial_load`` (the share of real time partials may take, 0.5),
        ``min_silence_seconds`` (the pause that ends a segment, 0.5), ``max_segment_seconds`` (15),
        ``partials`` (False: finals only), ... (see ``LiveOptions``).
        """
        from qwen_whisper_compat.streaming import open_stream
        from qwen_whisper_compat.transcribe import segment_dict

        return open_stream(
            self.recognizer, segment_dict, 0, self.segment_limits, language=language, initial_prompt=initial_prompt,
            word_timestamps=word_timestamps, condition_on_previous_text=condition_on_previous_text,
            temperature=temperature, compression_ratio_threshold=compression_ratio_threshold,
            logprob_threshold=logprob_threshold, no_speech_threshold=no_speech_threshold, live=live,
        )  # fmt: skip

    def close(self) -> None:
        """Free the native memory now instead of at garbage collection."""
        self.recognizer.close()

    def __repr__(self) -> str:
        return f"Whisper(name={self.name!r}, model={self.recognizer.model_path!r})"


def available_models() -> list[str]:
    """The model names :func:`load_model` accepts (whisper's names first, then the Qwen names)."""
    from qwen_whisper_compat import registry

    return registry.available_models()


def load_model(
    name: str,
    device: str | Any | None = None,
    download_root: str | None = None,
    in_memory: bool = False,
    *,
    aligner: str | os.PathLike[str] | bool | None = None,
    threads: int = 0,
    local_files_only: bool = False,
    segment_limits: SegmentLimits | None = None,
    precision: str | tuple[str, str] | None = None,
) -> Whisper:
    """Load a model by whisper name (``"turbo"``), Qwen name (``"qwen3-asr-0.6b-q4_k"``) or folder path.

    Args:
        name: See :func:`available_models`; or a model folder, or an official checkpoint folder
            (converted into the cache on first use); or a name a model source plugin knows (asked only
            for names that are none of these, see :mod:`~.plugins`).
        device: ``"cpu"``, ``"cuda"`` (or a ``torch.device``); ``None`` picks CUDA when onnxruntime has it.
        download_root: Cache folder (default ``~/.cache/qwen-whisper-compat``).
        in_memory: Accepted for compatibility (the model files are memory-mapped).
        aligner: ``None``: the aligner that comes with the name (or the folder's ``aligner/``) when it is
            available; a folder or name: that aligner; ``False``: none (no word timestamps; segments are
            timed from quiet points).
        threads: CPU threads (0 = all).
        local_files_only: Never download; fail with a message saying what to put where.
        segment_limits: Longest/widest segment (default 10 s, 84 columns).
        precision: Precision to convert official checkpoints to, overriding the name's: a decoder
            suffix (``"q4_k"``) or ``(encoder, decoder)`` (e.g. ``("int8", "q4_k")``).

    Raises:
        ModelFolderError: Unknown name (the message lists the valid ones), a broken folder, or a model
            that is not in the cache and cannot be downloaded (the message says what to download where).
    """
    from qwen_whisper_compat import hub

    if in_memory:
        logger.debug("in_memory=True has no effect: model files are memory-mapped")
    common: dict[str, Any] = {
        "download_root": download_root, "local_files_only": local_files_only, "precision": precision,
    }  # fmt: skip
    mode: hub.AlignerMode = "if_available" if aligner is None else aligner is True
    try:
        resolved = hub.resolve_model(name, aligner=mode, **common)
    except UnknownModelError:
        from qwen_whisper_compat.plugins import find_model

        folder = find_model(str(name))
        if folder is None:
            raise
        resolved = dataclasses.replace(hub.resolve_model(folder, aligner=mode, **common), name=str(name))
    aligner_path = resolved.aligner
    if aligner not in (None, False, True):
        aligner_path = hub.resolve_aligner(aligner, **common)  # type: ignore[arg-type]
    recognizer = Recognizer(resolved.asr, aligner_path, device=_device_name(device), threads=threads)
    return Whisper(recognizer, resolved.name, segment_limits)


def _device_name(device: Any) -> str:
    if device is None:
        return "auto"
    text = str(getattr(device, "type", device)).split(":")[0].lower()
    if text not in ("cpu", "cuda", "dml", "coreml", "auto"):
        raise UnsupportedOptionError(f"unknown device {device!r}; use 'cpu', 'cuda', 'dml', 'coreml' or 'auto'")
    return text
