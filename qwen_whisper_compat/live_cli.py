"""``qwen-whisper-live``: live transcription of the microphone, a file at real-time pace, or PCM on stdin.

::

    qwen-whisper-live                           # the microphone (extra [mic]: sounddevice)
    qwen-whisper-live talk.mp3 --realtime       # a file played at real-time pace (without: as fast as it goes)
    ffmpeg -i URL -f s16le -ar 16000 -ac 1 - | qwen-whisper-live -

On a terminal each final is printed as whisper prints segments, ``[mm:ss.mmm --> mm:ss.mmm]  text``, and,
where the terminal takes ANSI control sequences (TERM is not "dumb"), the open segment's partial text is
shown on one line rewritten in place, cut to the terminal's width in display columns (a CJK character takes
two) so that it never wraps; piped, every event is one JSON line. With ``--output_dir`` the finals are also
written as whisper's outputs (srt, vtt, ...) when the stream ends (Ctrl-C ends a microphone stream and still
writes them). The microphone is opened at its own rate and resampled to 16 kHz.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from qwen_whisper_compat.errors import QwenWhisperError, UnknownModelError
from qwen_whisper_compat.segments import is_wide
from qwen_whisper_compat.tokenizer import LANGUAGES, TO_LANGUAGE_CODE
from qwen_whisper_compat.utils import WRITERS, format_timestamp, str2bool

logger = logging.getLogger("qwen_whisper_compat.cli")

PROG = "qwen-whisper-live"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "input",
        nargs="?",
        default=None,
        metavar="INPUT",
        help="an audio or video file, '-' for 16 kHz mono s16le PCM on stdin; none: the microphone",
    )
    p.add_argument("--realtime", action="store_true", help="play INPUT at real-time pace (as a live source)")
    p.add_argument(
        "--model",
        default="small",
        help="model name or folder, as qwen-whisper's --model (default small: the 0.6B model; the 1.7B "
        "of turbo/large keeps up on a 2-core CPU only with a partial every 2 s or so)",
    )
    p.add_argument("--model_dir", default=None, help="the model cache folder")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all)")
    languages = sorted(LANGUAGES) + sorted(k.title() for k in TO_LANGUAGE_CODE)
    p.add_argument(
        "--language",
        default=None,
        choices=languages,
        metavar="LANGUAGE",
        help="the spoken language (default: detected per segment)",
    )
    p.add_argument("--initial_prompt", default=None, help="context for the first segment (names, hot words)")
    p.add_argument("--word_timestamps", type=str2bool, default=False, help="time the finals' words (aligner)")
    p.add_argument("--output_dir", "-o", default=None, help="also write the finals here when the stream ends")
    p.add_argument(
        "--output_format", "-f", default="all", choices=[*WRITERS, "all"], help="the formats written to --output_dir"
    )
    p.add_argument("--step_seconds", type=float, default=1.0, help="audio between partials")
    p.add_argument(
        "--partial_load",
        type=float,
        default=0.5,
        help="the share of real time partials may take (a slow machine gets them less often)",
    )
    p.add_argument("--min_silence_seconds", type=float, default=0.5, help="the pause that ends a segment")
    p.add_argument("--max_segment_seconds", type=float, default=15.0, help="the longest segment")
    p.add_argument("--no_partials", action="store_true", help="print finals only")
    p.add_argument("--json", action="store_true", help="write JSON lines even on a terminal")
    p.add_argument("--mic_device", default=None, help="the sounddevice input device (index or name)")
    return p


def takes_ansi(out: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``out`` is a terminal that takes ANSI control sequences (a tty whose TERM is not "dumb")."""
    environ = os.environ if environ is None else environ
    return _isatty(out) and environ.get("TERM", "") != "dumb"


def fit_tail(text: str, columns: int) -> str:
    """The end of ``text`` that fits in ``columns`` display columns (a wide character takes two; the rule of
    :func:`~qwen_whisper_compat.segments.is_wide`), led by "…" when the start is cut."""
    widths = [2 if is_wide(ch) else 1 for ch in text]
    if sum(widths) <= columns:
        return text
    used, start = 1, len(text)  # 1: the "…"
    while start > 0 and used + widths[start - 1] <= columns:
        start -= 1
        used += widths[start]
    return "…" + text[start:]


class Console:
    """A terminal: finals as whisper's verbose lines; with ``ansi``, the open segment's partial text on one
    line rewritten in place (never wider than the terminal, so it never wraps: the tail that fits is shown);
    without, finals only, line by line.

    Args:
        out: The terminal.
        ansi: It takes ANSI control sequences (see :func:`takes_ansi`).
    """

    def __init__(self, out: TextIO, ansi: bool) -> None:
        self.out, self.ansi = out, ansi
        self._partial = False

    def columns(self) -> int:
        """The terminal's width now (it may be resized while the stream goes on)."""
        try:
            return os.get_terminal_size(self.out.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size((80, 24)).columns

    def event(self, event: Any) -> None:
        if event.type == "partial":
            self.partial(event.text)
        else:
            self.final(event)

    def partial(self, text: str) -> None:
        if not self.ansi:
            return
        # one column short of the width: a line that fills it leaves some terminals at the next line
        printable = "".join(ch for ch in " ".join(text.split()) if unicodedata.category(ch) != "Cc")
        line = fit_tail(printable, max(self.columns() - 1, 2))
        self.out.write("\r\x1b[2K" + line)
        self.out.flush()
        self._partial = True

    def final(self, event: Any) -> None:
        self._clear()
        for s in event.segments:
            self.out.write(f"[{format_timestamp(s['start'])} --> {format_timestamp(s['end'])}] {s['text']}\n")
        self.out.flush()

    def close(self) -> None:
        self._clear()
        self.out.flush()

    def _clear(self) -> None:
        if self._partial:
            self.out.write("\r\x1b[2K")
            self._partial = False


class JsonLines:
    """A pipe: one JSON object per event."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def event(self, event: Any) -> None:
        """Write one event."""
        record: dict[str, Any] = {
            "type": event.type, "index": event.index, "start": round(event.start, 3), "end": round(event.end, 3),
            "text": event.text, "language": event.language,
        }  # fmt: skip
        if event.type == "final":
            record["segments"] = [{"start": s["start"], "end": s["end"], "text": s["text"]} for s in event.segments]
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def close(self) -> None:
        """Nothing is left open."""


def open_source(args: argparse.Namespace) -> tuple[Any, str]:
    """The audio source the arguments name, and the name its outputs get."""
    from qwen_whisper_compat import live_sources

    if args.input == "-":
        return live_sources.pcm_stream(), "stdin"
    if args.input is None:
        device = int(args.mic_device) if args.mic_device and args.mic_device.isdigit() else args.mic_device
        return live_sources.microphone(device), "microphone"
    speed = 1.0 if args.realtime else 1e9  # not --realtime: as fast as the transcriber takes it
    return live_sources.realtime_file(args.input, speed=speed), args.input


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = stdout or sys.stdout
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    logging.getLogger("qwen_whisper_compat.hub").setLevel(logging.INFO)
    from qwen_whisper_compat.cli import output_dir_problem

    if args.output_dir and (problem := output_dir_problem(args.output_dir)):
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 1
    if args.input not in (None, "-") and not os.path.isfile(args.input):  # before the model loads
        kind = "a folder, not an audio file" if os.path.isdir(args.input) else "not a file"
        print(f"{PROG}: error: {args.input!r} is {kind}", file=sys.stderr)
        return 1
    from qwen_whisper_compat.model import load_model

    try:
        model = load_model(args.model, device=args.device, download_root=args.model_dir, threads=args.threads,
                           aligner=None if args.word_timestamps else False)  # fmt: skip
    except UnknownModelError as e:
        parser.error(str(e))
    except (QwenWhisperError, ValueError, OSError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    try:
        return _transcribe(model, args, out)
    finally:
        model.close()


def _transcribe(model: Any, args: argparse.Namespace, out: TextIO) -> int:
    try:
        stream = model.stream(
            language=args.language, initial_prompt=args.initial_prompt, word_timestamps=args.word_timestamps,
            step_seconds=args.step_seconds, partial_load=args.partial_load, min_silence_seconds=args.min_silence_seconds,
            max_segment_seconds=args.max_segment_seconds, partials=not args.no_partials,
        )  # fmt: skip
    except (QwenWhisperError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    try:
        source, name = open_source(args)
    except (QwenWhisperError, ValueError) as e:
        stream.close()
        print(f"{PROG}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    printer: Console | JsonLines
    if args.json or not _isatty(out):
        printer = JsonLines(out)
    else:
        printer = Console(out, ansi=takes_ansi(out))
    status = 0
    events = stream.events(source)
    try:
        for event in events:
            printer.event(event)
    except KeyboardInterrupt:  # the way to stop a microphone: keep what was heard
        events.close()
        for event in stream.finish():
            printer.event(event)
    except QwenWhisperError as e:
        print(f"\n{PROG}: error: {type(e).__name__}: {e}", file=sys.stderr)
        status = 1
    finally:
        events.close()
        printer.close()
    if args.output_dir and stream.segments:
        _write(stream.result(), name, args)
    return status


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _write(result: dict[str, Any], name: str, args: argparse.Namespace) -> None:
    from qwen_whisper_compat.utils import get_writer

    os.makedirs(args.output_dir, exist_ok=True)
    writer = get_writer(args.output_format, args.output_dir)
    writer(result, name, max_line_width=None, max_line_count=None, highlight_words=False)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
