"""Result writers and small CLI helpers: the twin of ``whisper.utils`` (openai-whisper 20250625).

The writers produce byte for byte what openai-whisper's writers produce for the same result dict
(reference/whisper_compat.md 2.2, 2.3), including the word-level subtitle path and its line options.
Unlike upstream, a writer first fills a temporary file in the output folder and then moves it over the
target, so a writer that fails half-way leaves no partial file behind.

This module stays cheap to import, and it never imports the engine: a writer needs nothing but the result.
How word timings become cues (the line options) is :mod:`.word_cues`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TextIO

from qwen_whisper_compat.word_cues import Cue, LineOptions, highlighted, pack_words

__all__ = [
    "WRITERS",
    "ResultWriter",
    "SubtitlesWriter",
    "WriteJSON",
    "WriteSRT",
    "WriteTSV",
    "WriteTXT",
    "WriteVTT",
    "WriterFunction",
    "compression_ratio",
    "exact_div",
    "format_timestamp",
    "get_end",
    "get_start",
    "get_writer",
    "make_safe",
    "optional_float",
    "optional_int",
    "str2bool",
]

#: A whisper result dict (``text``, ``segments``, ``language``) or anything shaped like it.
Result = Mapping[str, Any]

_SYSTEM_ENCODING = sys.getdefaultencoding()


# --------------------------------------------------------------------------------------------------
# Small helpers used by the CLI
# --------------------------------------------------------------------------------------------------


def compression_ratio(text: str) -> float:
    """The gzip compression ratio of ``text`` (its UTF-8 bytes over their zlib-compressed length), as whisper's
    ``utils.compression_ratio``; a high ratio means repetitive text."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def make_safe(string: str) -> str:
    """``string`` with every character the interpreter's default encoding cannot represent replaced by ``?``.

    Python 3's default encoding is UTF-8, which represents everything, so this is normally the identity
    (see https://github.com/openai/whisper/discussions/729).
    """
    if _SYSTEM_ENCODING == "utf-8":
        return string
    return string.encode(_SYSTEM_ENCODING, errors="replace").decode(_SYSTEM_ENCODING)


def exact_div(x: int, y: int) -> int:
    """``x // y``, for an ``x`` that ``y`` divides exactly.

    Raises:
        ValueError: ``y`` does not divide ``x``.
    """
    if x % y != 0:
        raise ValueError(f"{x} is not a multiple of {y}")
    return x // y


def str2bool(string: str) -> bool:
    """Parse the CLI spellings ``"True"`` and ``"False"`` (nothing else).

    Raises:
        ValueError: Any other string.
    """
    if string == "True":
        return True
    if string == "False":
        return False
    raise ValueError(f"Expected one of {{'True', 'False'}}, got {string}")


def optional_int(string: str) -> int | None:
    """``None`` for the string ``"None"``, else ``int(string)``."""
    return None if string == "None" else int(string)


def optional_float(string: str) -> float | None:
    """``None`` for the string ``"None"``, else ``float(string)``."""
    return None if string == "None" else float(string)


def format_timestamp(seconds: float, always_include_hours: bool = False, decimal_marker: str = ".") -> str:
    """``[hh:]mm:ss.mmm`` for a time in seconds, rounded to the millisecond.

    Args:
        seconds: The time; must not be negative.
        always_include_hours: Write ``hh:`` even below one hour (SRT); otherwise only from one hour on.
        decimal_marker: What separates seconds from milliseconds (``","`` for SRT).

    Raises:
        ValueError: ``seconds`` is negative or NaN (upstream fails an ``assert`` there).
    """
    if not seconds >= 0:
        raise ValueError(f"non-negative timestamp expected, got {seconds!r}")
    hours, rest = divmod(round(seconds * 1000.0), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole_seconds, milliseconds = divmod(rest, 1_000)
    hours_part = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_part}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def get_start(segments: Sequence[Mapping[str, Any]]) -> float | None:
    """Start of the first word of any segment, else of the first segment; ``None`` without segments.

    Every segment up to the first one with words must have a ``words`` key.
    """
    fallback = segments[0]["start"] if segments else None
    return next((word["start"] for segment in segments for word in segment["words"]), fallback)


def get_end(segments: Sequence[Mapping[str, Any]]) -> float | None:
    """End of the last word of any segment, else of the last segment; ``None`` without segments.

    Every segment from the last one with words on must have a ``words`` key.
    """
    fallback = segments[-1]["end"] if segments else None
    return next((word["end"] for segment in reversed(segments) for word in reversed(segment["words"])), fallback)


# --------------------------------------------------------------------------------------------------
# Writing a file without leaving half of it behind
# --------------------------------------------------------------------------------------------------


def speaker_prefix(segment: Mapping[str, Any]) -> str:
    """WhisperX's ``[SPEAKER_00]: `` before a diarized segment's text; ``""`` for a segment without a speaker."""
    speaker = segment.get("speaker")
    return f"[{speaker}]: " if speaker else ""


def _open_temporary(folder: str, name: str) -> tuple[int, str]:
    """Create a new, empty file next to ``name`` in ``folder``; return its descriptor and path.

    The file is created with mode 0o666 less the umask, as ``open(path, "w")`` would create the target.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = os.path.join(folder, f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file for {name!r} in {folder!r}")


def _write_replacing(path: str, write: Callable[[TextIO], None]) -> None:
    """Write ``path`` (UTF-8 text, platform newlines) through ``write``; on failure leave ``path`` untouched."""
    folder, name = os.path.split(path)
    fd, temporary = _open_temporary(folder, name)
    try:
        with open(fd, "w", encoding="utf-8") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------


class ResultWriter:
    """Writes a result to ``<output_dir>/<audio file name without extension>.<extension>``.

    Subclasses set ``extension`` and implement ``write_result``.
    """

    #: File name extension, without the dot.
    extension: str

    def __init__(self, output_dir: str) -> None:
        self.output_dir = output_dir

    def __call__(
        self, result: Result, audio_path: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write ``result`` for the audio file ``audio_path`` (which need not exist).

        Args:
            result: The transcription result dict.
            audio_path: Names the output file: its base name, less the extension, plus ours.
            options: Line options (``max_line_width``, ``max_line_count``, ``highlight_words``,
                ``max_words_per_line``); keyword arguments of the same names take precedence.
            **kwargs: The same line options as keywords.
        """
        _write_replacing(
            self.output_path(audio_path),
            lambda file: self.write_result(result, file=file, options=options, **kwargs),
        )

    def output_path(self, audio_path: str) -> str:
        """The path ``__call__`` writes for ``audio_path``."""
        stem = os.path.splitext(os.path.basename(audio_path))[0]
        return os.path.join(self.output_dir, f"{stem}.{self.extension}")

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write ``result`` to an open text file."""
        raise NotImplementedError


class WriteTXT(ResultWriter):
    """Plain text: each segment's stripped text on its own line."""

    extension: str = "txt"

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write one line per segment; line options are ignored."""
        file.writelines(f"{speaker_prefix(segment)}{segment['text'].strip()}\n" for segment in result["segments"])


class SubtitlesWriter(ResultWriter):
    """Base of the cue-based formats (VTT, SRT): turns a result into (start, end, text) cues."""

    #: Write ``hh:`` even below one hour.
    always_include_hours: bool
    #: Separator between seconds and milliseconds.
    decimal_marker: str

    def iterate_result(
        self,
        result: Result,
        options: Mapping[str, Any] | None = None,
        *,
        max_line_width: int | None = None,
        max_line_count: int | None = None,
        highlight_words: bool = False,
        max_words_per_line: int | None = None,
    ) -> Iterator[Cue]:
        """The cues of ``result`` with formatted timestamps.

        With ``words`` in the first segment, cues are built from the words (timed from the first word's
        start to the last word's end, wrapped by the line options); otherwise there is one cue per segment
        with its stripped text and ``-->`` written as ``->``.

        Raises:
            TypeError: An unknown line option keyword (before anything is yielded).
        """
        segments = result["segments"]
        if len(segments) > 0 and "words" in segments[0]:
            line_options = LineOptions.resolve(
                options, max_line_width, max_line_count, highlight_words, max_words_per_line
            )
            return self._word_cues(segments, line_options)
        return self._segment_cues(segments)

    def _segment_cues(self, segments: Sequence[Mapping[str, Any]]) -> Iterator[Cue]:
        for segment in segments:
            text = speaker_prefix(segment) + segment["text"].strip().replace("-->", "->")
            yield self.format_timestamp(segment["start"]), self.format_timestamp(segment["end"]), text

    def _word_cues(self, segments: Sequence[Mapping[str, Any]], options: LineOptions) -> Iterator[Cue]:
        # a diarized result is packed one speaker's run of segments at a time: no cue mixes two speakers
        for _, run in itertools.groupby(segments, key=lambda segment: segment.get("speaker")):
            run_segments = list(run)
            prefix = speaker_prefix(run_segments[0])
            for cue in pack_words(run_segments, options, get_start(run_segments) or 0.0):
                if options.highlight_words:
                    for start, end, text in highlighted(cue, self.format_timestamp):
                        yield start, end, prefix + text
                else:
                    start, end = self.format_timestamp(cue[0]["start"]), self.format_timestamp(cue[-1]["end"])
                    yield start, end, prefix + "".join(timing["word"] for timing in cue)

    def format_timestamp(self, seconds: float) -> str:
        """``seconds`` in this format's timestamp style."""
        return format_timestamp(seconds, self.always_include_hours, self.decimal_marker)


class WriteVTT(SubtitlesWriter):
    """WebVTT: a ``WEBVTT`` header, then cues without ids, ``mm:ss.mmm`` (hours only from one hour on)."""

    extension: str = "vtt"
    always_include_hours: bool = False
    decimal_marker: str = "."

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write the header and every cue."""
        cues = self.iterate_result(result, options, **kwargs)
        file.write("WEBVTT\n\n")
        file.writelines(f"{start} --> {end}\n{text}\n\n" for start, end, text in cues)


class WriteSRT(SubtitlesWriter):
    """SubRip: numbered cues from 1, ``hh:mm:ss,mmm``."""

    extension: str = "srt"
    always_include_hours: bool = True
    decimal_marker: str = ","

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write every cue with its number."""
        cues = enumerate(self.iterate_result(result, options, **kwargs), start=1)
        file.writelines(f"{number}\n{start} --> {end}\n{text}\n\n" for number, (start, end, text) in cues)


class WriteTSV(ResultWriter):
    """Tab-separated ``start``, ``end``, ``text`` with times in integer milliseconds.

    Integer milliseconds cannot be garbled by a locale's decimal comma and are cheap to parse. Tabs in the
    text become spaces.
    """

    extension: str = "tsv"

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write the header line and one line per segment; line options are ignored."""
        file.write("start\tend\ttext\n")
        for segment in result["segments"]:
            start, end = round(1000 * segment["start"]), round(1000 * segment["end"])
            text = speaker_prefix(segment) + segment["text"].strip().replace("\t", " ")
            file.write(f"{start}\t{end}\t{text}\n")


class WriteJSON(ResultWriter):
    """The whole result as one line of JSON, non-ASCII escaped (``json.dump`` defaults)."""

    extension: str = "json"

    def write_result(
        self, result: Result, file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Write ``result``; line options are ignored."""
        file.write(json.dumps(result))


class WriterFunction(Protocol):
    """What ``get_writer`` returns: called as ``writer(result, audio_path, options=None, **line_options)``."""

    def __call__(
        self, result: Result, audio_path: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None: ...


#: whisper's output formats -> writer class (plugins add formats through :func:`.plugins.writers`).
WRITERS: dict[str, type[ResultWriter]] = {
    "txt": WriteTXT,
    "vtt": WriteVTT,
    "srt": WriteSRT,
    "tsv": WriteTSV,
    "json": WriteJSON,
}
#: What ``get_writer("all")`` writes: whisper's five formats (a plugin's format is written when asked by name).
ALL_FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def get_writer(output_format: str, output_dir: str) -> WriterFunction:
    """The writer for ``output_format`` writing into ``output_dir``.

    Args:
        output_format: A key of ``WRITERS``, ``"all"`` (those five), or a format a plugin registers
            (plugins are loaded only for a format that is not whisper's; see :mod:`~.plugins`).
        output_dir: The folder to write ``<audio stem>.<extension>`` files into.

    Raises:
        KeyError: An unknown format; the message lists the known ones.
    """
    if output_format == "all":
        writers = [WRITERS[name](output_dir) for name in ALL_FORMATS]

        def write_all(result: Result, audio_path: str, options: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
            for writer in writers:
                writer(result, audio_path, options, **kwargs)

        return write_all
    if output_format in WRITERS:
        return WRITERS[output_format](output_dir)
    from qwen_whisper_compat.plugins import writers as plugin_writers

    found = plugin_writers()
    if output_format not in found:
        known = ", ".join([*WRITERS, "all", *(name for name in found if name not in WRITERS)])
        raise KeyError(f"unknown output format {output_format!r}; expected one of: {known}")
    return found[output_format](output_dir)
