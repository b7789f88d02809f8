"""whisper-ctranslate2's flags on ``qwen-whisper``, so that callers of ``whisper-ctranslate2`` (PeerTube's runner
first: see docs/peertube.md) can run it instead. Owned by :mod:`~.cli`, which adds them to its parser and hands the
parsed values here; ``qwen-whisper-batch`` does not take them.

- ``--model_directory D``: the model folder, overriding ``--model`` as in whisper-ctranslate2. A CTranslate2
  folder (``model.bin``: what whisper-ctranslate2 and faster-whisper run) is refused, saying what folder to give.
- ``--vad_filter True`` with ``--vad_threshold``, ``--vad_min_speech_duration_ms``, ``--vad_max_speech_duration_s``,
  ``--vad_min_silence_duration_ms`` (and ``--vad_speech_pad_ms``, faster-whisper's ``speech_pad_ms``): ``transcribe``'s
  ``vad_filter=True`` and ``vad_parameters`` (a :class:`~.vad.VadOptions`; unset flags keep faster-whisper's
  defaults): only the speech regions :mod:`~.vad` finds are transcribed, as clips of the original timeline.
- ``--hotwords``: context text for every chunk, as ``--context``.
- The flags that mean nothing to this engine (``--compute_type``, ``--batched``, the diarization flags, ...) are
  accepted and reported once, as whisper's ``--beam_size`` is.
- Booleans read as whisper-ctranslate2 reads them: ``True`` or ``true`` (any case), for whisper's flags too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from collections.abc import Callable
from typing import Any

from qwen_whisper_compat import __version__
from qwen_whisper_compat import options as opts
from qwen_whisper_compat.errors import ModelFolderError
from qwen_whisper_compat.utils import optional_int
from qwen_whisper_compat.utils import str2bool as whisper_str2bool


def str2bool(string: str) -> bool:
    """whisper-ctranslate2's booleans: ``true`` or ``false`` in any case (``True``, ``FALSE``, ...).

    Raises:
        ValueError: Any other string.
    """
    value = {"true": True, "false": False}.get(string.lower())
    if value is None:
        raise ValueError(f"Expected one of {{'True', 'False'}}, got {string}")
    return value


#: The ``--vad_*`` flags (each sets the :class:`~.vad.VadOptions` field of its name; unset, the field keeps
#: faster-whisper's default), with their types and help.
VAD_FLAGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "vad_threshold": (float, "speech probability that starts speech; unset: 0.5"),
    "vad_min_speech_duration_ms": (int, "drop speech regions not longer than this; unset: 0"),
    "vad_max_speech_duration_s": (float, "split longer speech regions, at a silence where there is one"),
    "vad_min_silence_duration_ms": (int, "silence that ends a speech region; unset: 2000"),
    "vad_speech_pad_ms": (int, "widen each speech region by this on both sides; unset: 400 (ours)"),
}

_DIARIZATION = "speaker diarization is asked for with --diarize (and --min_speakers, --max_speakers)"
_BATCHED = ("chunks are decoded in order, each with the previous one's text as context (qwen-whisper-batch runs many "
            "files at once)")  # fmt: skip

#: whisper-ctranslate2 flags that mean nothing here: type, whisper-ctranslate2's default, and why (``None``: the
#: reason :data:`~.options.IGNORED` gives).
IGNORED: dict[str, tuple[Callable[[str], Any], Any, str | None]] = {
    "compute_type": (str, "auto", "the precision comes from the model: --precision f16|q8_0|q4_k, or the model folder"),
    "device_index": (int, 0, "the audio encoder runs on the first device of --device"),
    "pretty_json": (str2bool, False, "the .json file is written as openai-whisper writes it"),
    "print_colors": (str2bool, False, "--verbose True prints each segment, without colours"),
    "prompt_reset_on_temperature": (float, 0.5, None),
    "prefix": (str, None, None),
    "suppress_blank": (str2bool, True, None),
    "repetition_penalty": (float, 1.0, None),
    "no_repeat_ngram_size": (int, 0, None),
    "batched": (str2bool, False, _BATCHED),
    "batch_size": (optional_int, None, _BATCHED),
    "multilingual": (str2bool, False, "without --language, the language of every chunk is detected already"),
    "hf_token": (str, "", _DIARIZATION),
    "speaker_name": (str, "SPEAKER", _DIARIZATION),
    "speaker_num": (int, 2, _DIARIZATION),
}  # fmt: skip

#: The model folders ``--model_directory`` takes.
EXPECTED_FOLDER = (
    "a Qwen3-ASR model folder made by qwen-whisper-convert (manifest.json, encoder.*.onnx, decoder.*.gguf; the "
    "forced aligner, which --word_timestamps True needs, in its aligner/ subfolder), a Qwen3-ASR-GGUF export, or an "
    "official Qwen3-ASR checkpoint folder"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add whisper-ctranslate2's flags to ``qwen-whisper``'s parser, and read every boolean as it does."""
    for action in parser._actions:  # whisper's str2bool takes only "True" and "False"
        if action.type is whisper_str2bool:
            action.type = str2bool
    ct2 = parser.add_argument_group("whisper-ctranslate2 options (for PeerTube's runner and other callers of it)")
    add = ct2.add_argument
    add(
        "--model_directory",
        type=str,
        default=None,
        help="model folder, overriding --model (a Qwen3-ASR folder, not a CTranslate2 one)",
    )
    add(
        "--vad_filter",
        type=str2bool,
        default=False,
        help="transcribe only the speech the voice activity detector finds (Silero VAD); times stay the audio's",
    )
    for name, (kind, text) in VAD_FLAGS.items():
        add(f"--{name}", type=kind, default=None, help=f"(with --vad_filter True) {text}")
    add("--hotwords", type=str, default=None, help="context text for every chunk, as --context")
    for name, (kind, default, _) in IGNORED.items():
        flags = ("--pretty_json", "-p") if name == "pretty_json" else (f"--{name}",)
        add(*flags, type=kind, default=default, help="accepted for compatibility (whisper-ctranslate2)")
    add("--version", action="version", version=f"%(prog)s {__version__}")


@dataclasses.dataclass(frozen=True)
class Ct2Options:
    """What the whisper-ctranslate2 flags of one command line ask for besides ``transcribe``'s keywords."""

    #: ``--model_directory`` as given (it is then the model to load), or ``None``.
    model_directory: str | None = None

    def check_model(self, name: str) -> None:
        """Refuse, before anything loads, a ``--model_directory`` that is not a folder, and a CTranslate2 model
        folder given as ``--model_directory`` or ``--model`` (``name`` is the model to load).

        Raises:
            ModelFolderError: Saying which folder is expected.
        """
        folder = os.path.expanduser(name)
        if self.model_directory is None:
            from qwen_whisper_compat.registry import available_models

            if name in available_models() or not os.path.isdir(folder):
                return
        elif not os.path.isdir(folder):
            raise ModelFolderError(f"--model_directory {name!r} is not a folder; give {EXPECTED_FOLDER}")
        files = set(os.listdir(folder))
        if "model.bin" in files and "manifest.json" not in files:
            flag = "--model" if self.model_directory is None else "--model_directory"
            raise ModelFolderError(
                f"{flag} {name!r} is a CTranslate2 model folder (model.bin), which whisper-ctranslate2 and faster-whisper "
                f"run; qwen-whisper runs Qwen3-ASR: give {EXPECTED_FOLDER}; or give no model folder and a model name "
                "(--model small)"
            )


def take(parser: argparse.ArgumentParser, args: dict[str, Any]) -> Ct2Options:
    """Take the whisper-ctranslate2 flags out of ``args`` (parsed by a parser given to :func:`add_arguments`).

    ``--model_directory`` becomes ``args["model"]``, ``--hotwords`` joins ``args["context"]``, ``--vad_filter True``
    and the ``--vad_*`` flags become ``transcribe``'s ``vad_filter`` and ``vad_parameters``; ignored flags with other
    than their default are reported; usage errors exit through ``parser``.
    """
    for name, (_, default, reason) in IGNORED.items():
        value = args.pop(name)
        if value != default:
            why = reason or opts.IGNORED.get(name, "it has no meaning for Qwen3-ASR")
            shown = "<given>" if name == "hf_token" else repr(value)  # a secret stays off the logs
            warnings.warn(f"qwen_whisper_compat ignores {name}={shown}: {why}", UserWarning, stacklevel=2)
    hotwords = args.pop("hotwords")
    if hotwords:
        args["context"] = "\n".join(text for text in (args["context"], hotwords) if text)
    directory = args.pop("model_directory")
    if directory is not None:
        args["model"] = directory
    given = {name.removeprefix("vad_"): value for name in VAD_FLAGS if (value := args.pop(name)) is not None}
    if not args.pop("vad_filter"):
        if given:
            names = ", ".join(f"--vad_{name}" for name in given)
            warnings.warn(f"{names}: no effect without --vad_filter True", stacklevel=2)
        return Ct2Options(directory)
    if args["clip_timestamps"] != "0":
        parser.error("--clip_timestamps and --vad_filter True cannot be combined: pass one of them")
    from qwen_whisper_compat.vad import VadOptions

    try:
        args["vad_parameters"] = VadOptions(**given)
    except ValueError as e:
        parser.error(f"--vad_* options: {e}")
    args["vad_filter"] = True
    return Ct2Options(directory)
