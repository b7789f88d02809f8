"""yt-dlp post-processor that transcribes the downloaded file with Qwen3-ASR and writes subtitles next to it.

Enable it with ``yt-dlp --use-postprocessor "QwenWhisper:model=small;language=en" URL``; see this
distribution's README for the options. yt-dlp imports every plugin module when it starts, so this module
imports only yt-dlp at import time; ``qwen_whisper_compat`` (and its model) is loaded on the first run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from yt_dlp.postprocessor.common import PostProcessor
from yt_dlp.utils import DownloadError, PostProcessingError

__all__ = ["QwenWhisperOptions", "QwenWhisperOptionsError", "QwenWhisperPP"]

#: Output formats (whisper's writer names). Only the subtitle formats are handed to ``--embed-subs``.
FORMATS = ("srt", "vtt", "txt", "json")
EMBEDDABLE_FORMATS = ("srt", "vtt")
#: Title of the subtitle track when yt-dlp embeds it (``--embed-subs``).
TRACK_NAME = "Qwen3-ASR"

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_LINE_OPTIONS = ("max_line_width", "max_line_count", "max_words_per_line", "highlight_words")


class QwenWhisperOptionsError(PostProcessingError, DownloadError):
    """Options the post-processor cannot use (unknown name, bad value).

    Also a ``DownloadError``: yt-dlp builds its post-processors before it starts, and its command line ends
    with exit status 1, without a traceback, only on a ``DownloadError`` raised there.
    """


def _fail(message: str) -> PostProcessingError:
    return PostProcessingError(f"[{QwenWhisperPP.pp_key()}] {message}")


def _bad_option(message: str) -> QwenWhisperOptionsError:
    return QwenWhisperOptionsError(f"[{QwenWhisperPP.pp_key()}] {message}")


@dataclasses.dataclass(frozen=True)
class QwenWhisperOptions:
    """The post-processor's options, parsed once from what yt-dlp passes (strings on the command line)."""

    model: str = "turbo"
    """A whisper or Qwen model name (``turbo``, ``small``, ``qwen3-asr-0.6b-q4_k``) or a model folder."""
    language: str | None = None
    """Whisper language code; ``None`` detects the language."""
    format: str = "srt"
    """Output format, one of :data:`FORMATS`."""
    word_timestamps: bool = False
    """Time each word with the forced aligner (needed by the line options)."""
    initial_prompt: str | None = None
    """Context text for the model: names, terms, background."""
    device: str | None = None
    """``cpu``, ``cuda``, ...; ``None`` picks CUDA when it is available."""
    output_dir: str | None = None
    """Folder for the output file; ``None`` writes it next to the media."""
    model_dir: str | None = None
    """Model cache folder (whisper's ``download_root``); ``None`` uses the default cache."""
    max_line_width: int | None = None
    """Whisper's subtitle line options (srt/vtt; they need ``word_timestamps``)."""
    max_line_count: int | None = None
    max_words_per_line: int | None = None
    highlight_words: bool = False

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> QwenWhisperOptions:
        """Parse yt-dlp's keyword arguments (strings from the command line, or Python values).

        Raises:
            QwenWhisperOptionsError: An unknown option, or a value that cannot be used; the message says which.
        """
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.strip().replace("-", "_")
            parser = _PARSERS.get(name)
            if parser is None:
                raise _bad_option(f"unknown option {key!r}; the options are: {', '.join(_PARSERS)}")
            values[name] = parser(name, value)
        options = cls(**values)
        if not options.word_timestamps:
            for name in _LINE_OPTIONS:
                if getattr(options, name) not in (None, False):
                    raise _bad_option(f"{name} requires word_timestamps=true")
        return options

    def line_options(self) -> dict[str, Any]:
        """The writer's line options, as whisper's CLI passes them."""
        return {name: getattr(self, name) for name in _LINE_OPTIONS}


def _text(name: str, value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _required_text(name: str, value: Any) -> str:
    text = _text(name, value)
    if text is None:
        raise _bad_option(f"{name} needs a value")
    return text


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad_option(f"{name}={value!r} is not a boolean; use true or false (or 1/0, yes/no)")


def _positive_int(name: str, value: Any) -> int | None:
    text = _text(name, value)
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number <= 0:
        raise _bad_option(f"{name}={value!r} is not a positive whole number")
    return number


def _output_format(name: str, value: Any) -> str:
    text = (_text(name, value) or "").lower()
    if text not in FORMATS:
        raise _bad_option(f"{name}={value!r} is not supported; use one of: {', '.join(FORMATS)}")
    return text


def _language(name: str, value: Any) -> str | None:
    text = _text(name, value)
    if text is None or text.lower() == "auto":
        return None
    from qwen_whisper_compat.tokenizer import LANGUAGES, QWEN_LANGUAGES

    code = _language_code(text)
    if code is None:
        raise _bad_option(f"{name}={value!r} is not a language; use a code such as 'en' or a name such as 'English'")
    if code not in QWEN_LANGUAGES:
        known = ", ".join(sorted(QWEN_LANGUAGES))
        raise _bad_option(f"Qwen3-ASR cannot transcribe {LANGUAGES[code].title()} ({code}); it knows: {known}")
    return code


def _language_code(text: str) -> str | None:
    """Whisper's code for a language code or name (``"English"`` -> ``"en"``); ``None`` if unknown."""
    from qwen_whisper_compat.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    lowered = text.strip().lower()
    if lowered in LANGUAGES:
        return lowered
    return TO_LANGUAGE_CODE.get(lowered)


#: How each option is parsed, in the order the error message lists them.
_PARSERS: dict[str, Callable[[str, Any], Any]] = {
    "model": _required_text,
    "language": _language,
    "format": _output_format,
    "word_timestamps": _boolean,
    "initial_prompt": _text,
    "device": _text,
    "output_dir": _text,
    "model_dir": _text,
    "max_line_width": _positive_int,
    "max_line_count": _positive_int,
    "max_words_per_line": _positive_int,
    "highlight_words": _boolean,
}


class QwenWhisperPP(PostProcessor):
    """Transcribes ``info["filepath"]`` and writes ``<stem>.<format>`` next to it (or into ``output_dir``).

    The subtitle is registered in ``info["requested_subtitles"]`` under its language, so that yt-dlp's
    ``--embed-subs`` muxes it when this post-processor runs before it (``when=post_process``, the default).
    The model is loaded on the first run and reused for every later file of the same yt-dlp run.
    """

    def __init__(self, downloader: Any = None, **options: Any) -> None:
        """Parse ``options`` (see :class:`QwenWhisperOptions`).

        Raises:
            QwenWhisperOptionsError: Bad options (also reported through the downloader, when there is one).
        """
        super().__init__(downloader)
        self._model: Any = None
        try:
            self.options = QwenWhisperOptions.parse(options)
        except QwenWhisperOptionsError as error:
            if downloader is not None:  # print yt-dlp's "ERROR:" line; the raise below ends the run
                downloader.report_error(str(error), is_error=False)
            raise

    def run(self, info: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """Transcribe the file, write the output, register it as a subtitle; deletes nothing.

        Raises:
            PostProcessingError: No file at this stage, the model cannot be loaded, the file
                cannot be transcribed or the output cannot be written; the message says which.
        """
        filepath = info.get("filepath")
        if not filepath:
            raise _fail(
                "there is no downloaded file at this stage; use when=post_process (the default), after_move or "
                "after_video"
            )
        if info.get("acodec") == "none":  # a video-only format (-f bv); yt-dlp's own audio PPs skip it too
            self.to_screen(f'Skipping "{filepath}": it has no audio')
            return [], info
        model = self._load_model()
        self.to_screen(f'Transcribing "{filepath}"')
        result = self._transcribe(model, filepath)
        language = str(result.get("language") or "und")  # a whisper code: the one given, or the detected one
        if self.options.language is None:
            from qwen_whisper_compat.tokenizer import LANGUAGES

            self.to_screen(f"Detected language: {LANGUAGES.get(language, language).title()} ({language})")
        path = self._write(result, filepath)
        self._register(info, path, language)
        return [], info

    def _load_model(self) -> Any:
        if self._model is not None:
            return self._model
        try:
            import qwen_whisper_compat as whisper
        except ImportError as error:
            raise _fail(f"qwen-whisper-compat is not installed ({error}); pip install qwen-whisper-compat") from error
        self.to_screen(f'Loading model "{self.options.model}"')
        try:
            self._model = whisper.load_model(self.options.model, self.options.device, self.options.model_dir)
        # Any failure here (an unknown name, a missing folder, no network, a broken file) is the user's to fix;
        # yt-dlp shows a PostProcessingError as one "ERROR:" line, and --verbose adds the chained traceback.
        except Exception as error:
            raise _fail(f"cannot load model {self.options.model!r}: {error}") from error
        return self._model

    def _transcribe(self, model: Any, filepath: str) -> dict[str, Any]:
        try:
            result: dict[str, Any] = model.transcribe(
                filepath,
                verbose=None,
                language=self.options.language,
                word_timestamps=self.options.word_timestamps,
                initial_prompt=self.options.initial_prompt,
            )
        except Exception as error:  # as in _load_model: one clear line, the cause chained for --verbose
            raise _fail(f'cannot transcribe "{filepath}": {error}') from error
        self.to_screen(f"Transcribed {len(result['segments'])} segments")
        return result

    def _write(self, result: dict[str, Any], filepath: str) -> str:
        from qwen_whisper_compat.utils import WRITERS

        output_format = self.options.format
        output_dir = self.options.output_dir or os.path.dirname(filepath)  # "" for the current folder, as yt-dlp
        writer = WRITERS[output_format](output_dir)
        path = writer.output_path(filepath)
        self.to_screen(f'Writing {output_format} to: "{path}"')
        try:
            if output_dir:
                os.makedirs(output_dir, exist_ok=True)
            writer(result, filepath, self.options.line_options())
        except OSError as error:
            raise _fail(f'cannot write "{path}": {error}') from error
        return path

    def _register(self, info: dict[str, Any], path: str, language: str) -> None:
        if self.options.format in EMBEDDABLE_FORMATS:
            subtitles = dict(info.get("requested_subtitles") or {})
            if language in subtitles and subtitles[language].get("filepath") != path:
                self.to_screen(f'Replacing the "{language}" subtitle to embed with ours')
            subtitles[language] = {"ext": self.options.format, "filepath": path, "name": TRACK_NAME}
            info["requested_subtitles"] = subtitles
        files_to_move = info.get("__files_to_move")
        if self.options.output_dir is None and isinstance(files_to_move, dict):
            # Before yt-dlp moves the download out of its temporary folder (-P temp:...), list the output with
            # the files to move, as yt-dlp does for its own subtitles, so that it ends up next to the media.
            files_to_move.setdefault(path, "")
