"""``qwen-whisper``: the ``whisper`` command line on Qwen3-ASR (also ``python -m qwen_whisper_compat``).

Same flags, spellings and defaults as openai-whisper's CLI, so subtitle editors and scripts that run
``whisper`` can run this instead; outputs are ``<output_dir>/<audio stem>.<ext>``. Options that mean
nothing to this engine (``--beam_size``, ``--fp16``, ...) are accepted and reported once. Our own flags
have names whisper does not use: ``--aligner_model``, ``--precision``, ``--context``,
``--align_segments``, ``--segment_max_seconds``, ``--segment_max_width``, ``--local_files_only``,
``--postprocess``. whisper-ctranslate2's flags (``--model_directory``, ``--vad_filter``, ...: what PeerTube's
runner passes) are :mod:`~.cli_ct2`'s.

Plugins (:mod:`~.plugins`) are loaded only when a command needs them: for an ``--output_format`` that is
not whisper's, for ``--postprocess``, or for a ``--model`` name the hub does not know.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from qwen_whisper_compat import cli_ct2
from qwen_whisper_compat.errors import QwenWhisperError, UnknownModelError
from qwen_whisper_compat.tokenizer import LANGUAGES, TO_LANGUAGE_CODE
from qwen_whisper_compat.utils import WRITERS, optional_float, optional_int, str2bool

logger = logging.getLogger("qwen_whisper_compat.cli")

WORD_OPTIONS = ("highlight_words", "max_line_count", "max_line_width", "max_words_per_line")


#: Flags that may stand alone (meaning True) or take ``True`` / ``False``.
BARE_FLAGS = ("--diarize",)


class WhisperArgumentParser(argparse.ArgumentParser):
    """argparse, except that a :data:`BARE_FLAGS` flag not followed by ``True`` or ``False`` means ``True``.

    argparse gives an optional value (``nargs="?"``) the next word whatever it is, so ``--diarize talk.mp3``
    would read the audio path as the flag's value; here the path stays an audio file.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        expanded: list[str] = []
        for i, word in enumerate(words):
            expanded.append(word)
            if word in BARE_FLAGS and (i + 1 == len(words) or words[i + 1] not in ("True", "False")):
                expanded.append("True")
        return super().parse_known_args(expanded, namespace)


def build_parser(
    prog: str = "qwen-whisper",
    description: str = "Transcribe audio with Qwen3-ASR; the command line of openai-whisper.",
) -> argparse.ArgumentParser:
    """whisper's argument parser, plus our own flags."""
    p = WhisperArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = p.add_argument
    add("audio", nargs="+", type=str, help="audio file(s) to transcribe")
    add("--model", default="turbo", type=str,
        help="model name (whisper names map to Qwen3-ASR: tiny/base/small -> 0.6B, medium/large*/turbo -> 1.7B; "
             "or qwen3-asr-0.6b, qwen3-asr-1.7b with -f16/-q8_0/-q4_k) or a model folder")
    add("--model_dir", type=str, default=None, help="where models are downloaded and converted; "
        "default ~/.cache/qwen-whisper-compat or $QWEN_WHISPER_CACHE")
    add("--device", default="auto", help="device for the audio encoder: cpu, cuda, dml, coreml or auto")
    add("--output_dir", "-o", type=str, default=".", help="directory to save the outputs")
    # no choices=: a plugin's format is valid too, and plugins are loaded only after parsing (see main)
    add("--output_format", "-f", type=str, default="all", metavar="{" + ",".join([*WRITERS, "all"]) + ",...}",
        help="format of the output file; if not specified, all available formats will be produced "
             "(all: whisper's five; plugins add formats)")
    add("--verbose", type=str2bool, default=True, help="whether to print out the progress and debug messages")
    add("--task", type=str, default="transcribe", choices=["transcribe", "translate"],
        help="only 'transcribe' is supported (Qwen3-ASR does not translate)")
    add("--language", type=str, default=None,
        choices=sorted(LANGUAGES) + sorted(k.title() for k in TO_LANGUAGE_CODE),
        help="language spoken in the audio, specify None to perform language detection")
    add("--temperature", type=float, default=0, help="temperature to use for sampling")
    add("--best_of", type=optional_int, default=5, help="accepted for compatibility; decoding is greedy")
    add("--beam_size", type=optional_int, default=5, help="accepted for compatibility; decoding is greedy")
    add("--patience", type=float, default=None, help="accepted for compatibility")
    add("--length_penalty", type=float, default=None, help="accepted for compatibility")
    add("--suppress_tokens", type=str, default="-1", help="accepted for compatibility")
    add("--initial_prompt", type=str, default=None,
        help="context text for the first window (names, terms, background)")
    add("--carry_initial_prompt", type=str2bool, default=False, help="if True, give initial_prompt to every window")
    add("--condition_on_previous_text", type=str2bool, default=True,
        help="if True, give the previous window's text to the next window as context")
    add("--fp16", type=str2bool, default=True, help="accepted for compatibility; precision comes from --precision")
    add("--temperature_increment_on_fallback", type=optional_float, default=0.2,
        help="temperature to increase when falling back when the decoding fails to meet either of the thresholds")
    add("--compression_ratio_threshold", type=optional_float, default=2.4,
        help="if the gzip compression ratio is higher than this value, treat the decoding as failed")
    add("--logprob_threshold", type=optional_float, default=-1.0,
        help="if the average log probability is lower than this value, treat the decoding as failed")
    add("--no_speech_threshold", type=optional_float, default=0.6,
        help="if the no-speech probability is higher than this value AND the decoding has failed due to "
             "`logprob_threshold`, consider the window as silence")
    add("--word_timestamps", type=str2bool, default=False, help="word-level timestamps from the forced aligner")
    add("--prepend_punctuations", type=str, default="\"'“¿([{-", help="accepted for compatibility")
    add("--append_punctuations", type=str, default="\"'.。,，!！?？:：”)]}、", help="accepted for compatibility")
    add("--highlight_words", type=str2bool, default=False,
        help="(requires --word_timestamps True) underline each word as it is spoken in srt and vtt")
    add("--max_line_width", type=optional_int, default=None,
        help="(requires --word_timestamps True) the maximum number of characters in a line before breaking the line")
    add("--max_line_count", type=optional_int, default=None,
        help="(requires --word_timestamps True) the maximum number of lines in a segment")
    add("--max_words_per_line", type=optional_int, default=None,
        help="(requires --word_timestamps True, no effect with --max_line_width) "
             "the maximum number of words in a segment")
    add("--threads", type=optional_int, default=0, help="number of CPU threads (0: all cores)")
    add("--clip_timestamps", type=str, default="0",
        help="comma-separated list start,end,start,end,... timestamps (in seconds) of clips to process")
    add("--hallucination_silence_threshold", type=optional_float, help="accepted for compatibility")
    ours = p.add_argument_group("qwen-whisper options")
    ours.add_argument("--aligner_model", type=str, default=None,
                      help="forced-aligner folder or name for word timestamps "
                           "(default: the one that comes with --model)")
    ours.add_argument("--precision", type=str, default=None,
                      help="precision converted from the official checkpoint: f32, f16, q8_0 or q4_k (decoder)")
    ours.add_argument("--context", type=str, default=None,
                      help="context text for every window (hot words, names); like --initial_prompt carried")
    ours.add_argument("--align_segments", type=str2bool, default=True,
                      help="time segments with the forced aligner; False is faster, times are then estimated")
    ours.add_argument("--segment_max_seconds", type=float, default=10.0, help="longest segment, in seconds")
    ours.add_argument("--segment_max_width", type=int, default=84,
                      help="widest segment, in columns (a CJK character counts 2)")
    ours.add_argument("--local_files_only", type=str2bool, default=False,
                      help="never download; use only the model cache and local folders")
    ours.add_argument("--diarize", type=str2bool, nargs="?", const=True, default=False,
                      help="speaker labels on every segment ([SPEAKER_00]: in txt, srt, vtt, tsv; 'speaker' in json); "
                           "needs pip install 'qwen-whisper-compat[diarize]'")
    ours.add_argument("--min_speakers", type=optional_int, default=None, help="(with --diarize True) at least this "
                      "many speakers")
    ours.add_argument("--max_speakers", type=optional_int, default=None, help="(with --diarize True) at most this "
                      "many speakers")
    ours.add_argument("--postprocess", type=str, default=None, metavar="NAME[,NAME]",
                      help="text post-processors for every segment, in order (e.g. chinese_itn: Chinese numbers "
                           "as digits); plugins add more")
    return p  # fmt: skip


@dataclasses.dataclass(frozen=True)
class CliJob:
    """What one command line asks for, checked: the keywords of ``load_model``, ``transcribe`` and the writers.

    ``qwen-whisper-batch`` parses the same flags and runs the same job on many workers, so both commands give
    the same outputs for the same options.
    """

    audio: tuple[str, ...]
    output_dir: str
    output_format: str
    #: keywords of :func:`~qwen_whisper_compat.model.load_model` (the model name as ``name``)
    load: dict[str, Any]
    #: keywords of :func:`~qwen_whisper_compat.transcribe.transcribe` besides the model and the audio
    transcribe: dict[str, Any]
    #: the word-level line options of the subtitle writers
    writer_args: dict[str, Any]


def plan(parser: argparse.ArgumentParser, args: dict[str, Any]) -> CliJob:
    """The job ``args`` (parsed by :func:`build_parser`'s parser) describe; usage errors exit through ``parser``."""
    args = dict(args)
    if not args["word_timestamps"]:
        for option in WORD_OPTIONS:
            if args[option]:
                parser.error(f"--{option} requires --word_timestamps True")
    if args["max_line_count"] and not args["max_line_width"]:
        warnings.warn("--max_line_count has no effect without --max_line_width", stacklevel=1)
    if args["max_words_per_line"] and args["max_line_width"]:
        warnings.warn("--max_words_per_line has no effect with --max_line_width", stacklevel=1)
    if args["task"] == "translate":
        parser.error("--task translate is not supported: Qwen3-ASR transcribes and does not translate")
    _check_output_format(parser, args["output_format"])
    if not args["diarize"]:
        if args["min_speakers"] is not None or args["max_speakers"] is not None:
            parser.error("--min_speakers and --max_speakers need --diarize True")
        for name in ("diarize", "min_speakers", "max_speakers"):
            args.pop(name)
    postprocess = _postprocess_names(parser, args.pop("postprocess"))
    if postprocess:
        args["postprocess"] = postprocess

    from qwen_whisper_compat.segments import SegmentLimits

    temperature = args.pop("temperature")
    increment = args.pop("temperature_increment_on_fallback")
    temperatures: tuple[float, ...] = (temperature,)
    if increment is not None:
        n = int((1.0 + 1e-6 - temperature) // increment) + 1 if increment > 0 else 1
        temperatures = tuple(round(temperature + i * increment, 6) for i in range(max(1, n)))
    load = {
        "name": args.pop("model"),
        "device": args.pop("device"),
        "download_root": args.pop("model_dir"),
        "aligner": args.pop("aligner_model"),
        "threads": args.pop("threads") or 0,
        "local_files_only": args.pop("local_files_only"),
        "segment_limits": SegmentLimits(args.pop("segment_max_seconds"), args.pop("segment_max_width")),
        "precision": args.pop("precision"),
    }
    output_dir = args.pop("output_dir")
    output_format = args.pop("output_format")
    writer_args = {name: args.pop(name) for name in WORD_OPTIONS}
    if not args["context"]:
        args.pop("context")
    for name in ("best_of", "beam_size", "patience", "length_penalty", "fp16", "suppress_tokens"):
        if args[name] == parser.get_default(name):
            args.pop(name)  # defaults mean "nothing asked": no warning for them
    args.pop("task")
    audio = tuple(args.pop("audio"))
    return CliJob(audio, output_dir, output_format, load, {"temperature": temperatures, **args}, writer_args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    cli_ct2.add_arguments(parser)
    args: dict[str, Any] = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # first use of a model name downloads and converts for minutes: say so (the download shows its own bars)
    logging.getLogger("qwen_whisper_compat.hub").setLevel(logging.INFO)
    ct2 = cli_ct2.take(parser, args)
    job = plan(parser, args)

    from qwen_whisper_compat.model import load_model
    from qwen_whisper_compat.transcribe import transcribe
    from qwen_whisper_compat.utils import get_writer

    problem = output_dir_problem(job.output_dir)  # before the model loads (minutes on first use), creating nothing
    if problem:
        print(f"qwen-whisper: error: {problem}", file=sys.stderr)
        return 1
    try:
        ct2.check_model(job.load["name"])
        model = load_model(**job.load)
    except UnknownModelError as e:
        parser.error(str(e))
    except (QwenWhisperError, ValueError, OSError) as e:
        print(f"qwen-whisper: error: {e}", file=sys.stderr)
        return 1
    try:
        os.makedirs(job.output_dir, exist_ok=True)
    except OSError as e:
        model.close()
        reason = cannot_create(job.output_dir, e.strerror or type(e).__name__)
        print(f"qwen-whisper: error: {reason}", file=sys.stderr)
        return 1
    writer = get_writer(job.output_format, job.output_dir)
    failed = 0
    try:
        for audio_path in job.audio:
            try:
                result = transcribe(model, audio_path, **job.transcribe)
                writer(result, audio_path, **job.writer_args)
            except Exception as e:  # as whisper's CLI: any failure skips this file, the others go on
                failed += 1
                logger.debug("failure details", exc_info=True)
                print(f"Skipping {audio_path} due to {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        model.close()
    return 0 if not failed else 1


def output_dir_problem(folder: str) -> str:
    """Why ``folder`` cannot be created (or written), or ``""``; nothing is created."""
    path = os.path.abspath(folder)
    existing = path
    while not os.path.exists(existing) and existing != os.path.dirname(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return cannot_create(folder, f"{existing!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        verb = "write into" if existing == path else "create folders in"
        return cannot_create(folder, f"no permission to {verb} {existing!r}")
    return ""


def cannot_create(folder: str, reason: str) -> str:
    return f"cannot create the output folder {folder!r}: {reason}; pass another --output_dir"


def _check_output_format(parser: argparse.ArgumentParser, output_format: str) -> None:
    """An argparse error (exit 2) for a format that neither whisper nor a plugin provides.

    Whisper's formats are checked without loading plugins; any other loads them here, after parsing, so that
    ``--help`` and the common case load none.
    """
    if output_format in (*WRITERS, "all"):
        return
    from qwen_whisper_compat.plugins import writers

    formats = [*WRITERS, "all", *(name for name in writers() if name not in WRITERS)]
    if output_format not in formats:
        choices = ", ".join(repr(f) for f in formats)
        parser.error(f"argument --output_format/-f: invalid choice: {output_format!r} (choose from {choices})")


def _postprocess_names(parser: argparse.ArgumentParser, value: str | None) -> list[str]:
    """The names in ``--postprocess``, each checked against the registered post-processors (exit 2 if unknown)."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    if not names:
        return []
    from qwen_whisper_compat.plugins import postprocessors

    registered = postprocessors()
    for name in names:
        if name not in registered:
            choices = ", ".join(repr(n) for n in registered) or "none is installed"
            parser.error(f"argument --postprocess: invalid choice: {name!r} (choose from {choices})")
    return names


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
