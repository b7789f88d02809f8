"""The hook specifications of qwen_whisper_compat's plugin system (no logic here; see :mod:`.plugins`).

Every hook hands the plugin a ``register`` callback, in the ``register_*`` style of simonw/llm; a plugin
implements any of them with :data:`hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

#: The project name shared by the markers, the plugin manager and the entry-point group.
PROJECT = "qwen_whisper_compat"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_writers(register: Callable[[str, Any], None]) -> None:
    """Add output formats: ``register(format_name, writer_class)``; ``writer_class(output_dir)`` is a writer."""


@hookspec
def register_postprocessors(register: Callable[[str, Any], None]) -> None:
    """Add text post-processors: ``register(name, function)`` with ``function(text, language) -> text``."""


@hookspec
def register_model_sources(register: Callable[[str, Any], None]) -> None:
    """Add model sources: ``register(name, resolver)``; ``resolver(model_name)`` returns a folder or ``None``."""
