"""A tiny qwen_whisper_compat plugin, installed by tests/test_plugins.py: the output format ``upper``
(``<stem>.upper``: the segment texts in capitals, one per line) and the post-processor ``upper``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TextIO

from qwen_whisper_compat.plugins import hookimpl
from qwen_whisper_compat.utils import ResultWriter


class WriteUpper(ResultWriter):
    """Each segment's stripped text in capitals, on its own line."""

    extension = "upper"

    def write_result(
        self, result: Mapping[str, Any], file: TextIO, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        file.writelines(segment["text"].strip().upper() + "\n" for segment in result["segments"])


def upper(text: str, language: str) -> str:
    return text.upper()


@hookimpl
def register_writers(register: Callable[[str, Any], None]) -> None:
    register("upper", WriteUpper)


@hookimpl
def register_postprocessors(register: Callable[[str, Any], None]) -> None:
    register("upper", upper)
