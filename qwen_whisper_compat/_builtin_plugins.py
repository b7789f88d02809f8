"""The built-in plugin: whisper's five output formats, the ``hub`` model source and the ``chinese_itn``
post-processor.

:func:`~.plugins.get_plugin_manager` registers this module with ``pm.register``, as it registers an
entry-point plugin; its hooks run first (``tryfirst``), so a third-party plugin cannot take these names.
Everything is imported inside the hooks: registering this module imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwen_whisper_compat.hookspecs import hookimpl

#: Languages the Chinese inverse text normalization applies to ("" = not known: it was asked for, so apply).
CHINESE_CODES = ("zh", "yue", "")


@hookimpl(tryfirst=True)
def register_writers(register: Callable[[str, Any], None]) -> None:
    """txt, vtt, srt, tsv and json, byte-compatible with whisper's writers."""
    from qwen_whisper_compat.utils import WRITERS

    for name, writer_class in WRITERS.items():
        register(name, writer_class)


@hookimpl(tryfirst=True)
def register_model_sources(register: Callable[[str, Any], None]) -> None:
    """The model names of :mod:`~.hub` (whisper's and Qwen's), downloaded and converted on first use."""
    register("hub", hub_source)


@hookimpl(tryfirst=True)
def register_postprocessors(register: Callable[[str, Any], None]) -> None:
    """``chinese_itn``: Chinese numbers, dates, percentages ... in digits (applied to Chinese segments only)."""
    from qwen_whisper_compat.itn import chinese_itn

    def chinese_itn_postprocessor(text: str, language: str) -> str:
        return chinese_itn(text) if language in CHINESE_CODES else text

    register("chinese_itn", chinese_itn_postprocessor)


def hub_source(name: str) -> Path | None:
    """The converted model folder for a hub model name (downloading it if needed); ``None`` for other names."""
    from qwen_whisper_compat import hub, registry
    from qwen_whisper_compat.errors import UnknownModelError

    try:
        registry.parse_model_name(name)
    except UnknownModelError:
        return None
    return hub.resolve_model(name, aligner=False).asr
