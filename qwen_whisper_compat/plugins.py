"""Plugins: output formats, text post-processors and model sources, through pluggy and entry points.

A plugin is a module whose functions carry :data:`hookimpl` and implement the hooks of :mod:`.hookspecs`;
a distribution makes it known under the entry-point group ``qwen_whisper_compat``::

    # pyproject.toml
    [project.entry-points.qwen_whisper_compat]
    upper = "qwc_upper"

    # qwc_upper.py
    from qwen_whisper_compat.plugins import hookimpl
    from qwen_whisper_compat.utils import ResultWriter

    class WriteUpper(ResultWriter):
        extension = "upper"

        def write_result(self, result, file, options=None, **kwargs):
            file.write(result["text"].upper())

    @hookimpl
    def register_writers(register):
        register("upper", WriteUpper)  # now `qwen-whisper -f upper` and get_writer("upper", ...) work

What the hooks register:

- ``register_writers``: ``register(format, writer_class)``; ``writer_class(output_dir)`` must return a writer
  called as ``writer(result, audio_path, options=None, **line_options)`` (subclass
  :class:`~.utils.ResultWriter`). ``"all"`` stays whisper's five formats.
- ``register_postprocessors``: ``register(name, function)``; ``function(text, language) -> text`` rewrites each
  segment's text (``language`` is the segment's whisper code, ``""`` when unknown). Used by
  ``transcribe(..., postprocess=[name])`` and ``qwen-whisper --postprocess name``.
- ``register_model_sources``: ``register(name, resolver)``; ``resolver(model_name)`` returns a folder that
  ``load_model`` accepts as a path (a model folder, an export folder or an official checkpoint folder), or
  ``None`` when the name is not its own. ``load_model`` asks the sources, in order, only for names the hub
  does not know, so no plugin can change what whisper's model names mean.

Built-ins (whisper's five formats, the ``hub`` model source, the ``chinese_itn`` post-processor) live in
:mod:`._builtin_plugins`, registered through ``pm.register`` as entry-point plugins are, ahead of them
(``tryfirst``): a plugin cannot take a built-in name, and a name registered twice keeps its first owner.

Loading is lazy: importing the package or building the CLI parser loads nothing; the first call of
:func:`get_plugin_manager` (made by the registry functions below, ``get_writer`` for a format that is not
built in, ``load_model`` for an unknown name, and post-processing) loads the plugins once per process.

``QWEN_WHISPER_PLUGINS`` limits the entry-point plugins loaded: unset loads all; a comma-separated list
loads only those entry-point (or distribution) names; an empty value loads none. Built-ins always load.

A broken plugin never breaks the others: a plugin that fails to import or register, implements a hook that
does not exist, raises inside a ``register_*`` hook or registers an invalid entry is skipped (or that entry
is) with one logged warning naming the plugin and its error (logger ``qwen_whisper_compat.plugins``).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from qwen_whisper_compat import hookspecs
from qwen_whisper_compat.errors import ModelFolderError, QwenWhisperError, UnsupportedOptionError
from qwen_whisper_compat.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from qwen_whisper_compat.utils import WriterFunction

__all__ = [
    "DEFAULT_PLUGINS",
    "GROUP",
    "PLUGINS_ENV",
    "ModelSource",
    "PostProcessor",
    "WriterFactory",
    "find_model",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "model_sources",
    "postprocessors",
    "reset_plugins",
    "resolve_postprocessors",
    "writers",
]

logger = logging.getLogger("qwen_whisper_compat.plugins")

#: The entry-point group third-party plugins are declared in.
GROUP = hookspecs.PROJECT
#: Environment variable: comma-separated entry-point names to load (unset: all; empty: none).
PLUGINS_ENV = "QWEN_WHISPER_PLUGINS"
#: Modules registered before any entry point, by the same ``pm.register`` call.
DEFAULT_PLUGINS = ("qwen_whisper_compat._builtin_plugins",)

#: ``function(text, language) -> text``: rewrites one segment's text.
PostProcessor = Callable[[str, str], str]
#: ``resolver(model_name) -> folder | None``.
ModelSource = Callable[[str], "str | os.PathLike[str] | None"]
#: ``writer_class(output_dir) -> writer`` (a :class:`~.utils.ResultWriter` subclass).
WriterFactory = Callable[[str], "WriterFunction"]

#: Names of formats, post-processors and sources: no commas (the CLI splits on them), no spaces.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")

_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_warned: set[str] = set()


def get_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, created and loaded on the first call (built-ins, then entry points); then the same."""
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            _manager = pm  # before loading: a plugin that asks for the manager while importing gets this one
            for module_name in DEFAULT_PLUGINS:
                pm.register(importlib.import_module(module_name), name=module_name)
            _load_entry_points(pm, _allow_list())
        return _manager


def reset_plugins() -> None:
    """Forget the plugin manager (and the warnings given); the next use loads the plugins again. For tests."""
    global _manager
    with _lock:
        _manager = None
        _warned.clear()


def writers() -> dict[str, WriterFactory]:
    """Output format -> writer class: whisper's five, then the plugins' formats."""
    return _collect("register_writers", "output format", reserved=("all",))


def postprocessors() -> dict[str, PostProcessor]:
    """Post-processor name -> ``function(text, language) -> text``."""
    return _collect("register_postprocessors", "post-processor")


def model_sources() -> dict[str, ModelSource]:
    """Model source name -> ``resolver(model_name) -> folder | None``, in the order they are asked."""
    return _collect("register_model_sources", "model source")


def resolve_postprocessors(spec: str | Iterable[str | PostProcessor] | None) -> tuple[PostProcessor, ...]:
    """The post-processors named by ``spec``, in order.

    Args:
        spec: ``None``, a comma-separated string of names, or a sequence of names and
            ``function(text, language) -> text`` callables.

    Raises:
        UnsupportedOptionError: An unknown name; the message lists the registered ones.
    """
    if not spec:
        return ()
    items: Iterable[str | PostProcessor] = spec.split(",") if isinstance(spec, str) else spec
    registry: dict[str, PostProcessor] | None = None
    found: list[PostProcessor] = []
    for item in items:
        if not isinstance(item, str):
            if not callable(item):
                raise TypeError(f"postprocess takes names or functions(text, language) -> text, got {item!r}")
            found.append(item)
            continue
        name = item.strip()
        if not name:
            continue
        if registry is None:
            registry = postprocessors()
        if name not in registry:
            known = ", ".join(registry) or "none"
            raise UnsupportedOptionError(
                f"unknown post-processor {name!r}; available: {known} (plugins add more; see {PLUGINS_ENV})"
            )
        found.append(registry[name])
    return tuple(found)


def find_model(name: str) -> Path | None:
    """The folder the first model source that knows ``name`` returns, or ``None``.

    Raises:
        ModelFolderError: A source failed or gave something that is not a folder (the message names the
            source); errors of this package raised by a source pass as they are.
    """
    for source, resolver in model_sources().items():
        try:
            folder = resolver(name)
        except QwenWhisperError:
            raise
        except Exception as e:
            raise ModelFolderError(f"model source {source!r} failed for {name!r}: {type(e).__name__}: {e}") from e
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise ModelFolderError(f"model source {source!r} gave {os.fspath(folder)!r} for {name!r}: not a folder")
        logger.info("model %r comes from model source %r: %s", name, source, os.fspath(folder))
        return Path(folder)
    return None


# ------------------------------------------------------------------------------------------------ loading
def _canonical(name: str) -> str:
    """Names compared as Python packaging compares distribution names (case, ``-_.`` runs)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _allow_list() -> frozenset[str] | None:
    value = os.environ.get(PLUGINS_ENV)
    if value is None:
        return None
    return frozenset(_canonical(name) for name in value.split(",") if name.strip())


def _distribution_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.metadata["Name"]) if dist is not None else "?"


def _load_entry_points(pm: pluggy.PluginManager, allowed: frozenset[str] | None) -> None:
    """Register each allowed entry point of :data:`GROUP` once; a failing one is skipped with a warning."""
    for ep in entry_points(group=GROUP):
        dist_name = _distribution_name(ep)
        if allowed is not None and not {_canonical(ep.name), _canonical(dist_name)} & allowed:
            logger.debug("plugin %r (%s) not loaded: not in %s", ep.name, dist_name, PLUGINS_ENV)
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()  # a hook that does not exist (misspelt, or from a newer version) is an error
        except Exception as e:  # noqa: BLE001 - a broken plugin is skipped with a warning, never fatal
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            _warn(
                f"plugin {ep.name!r} ({ep.value} from distribution {dist_name}) was not loaded: "
                f"{type(e).__name__}: {e} (set {PLUGINS_ENV} to choose the plugins to load)"
            )


def _warn(message: str) -> None:
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning("%s", message)


def _collect(hook_name: str, kind: str, reserved: tuple[str, ...] = ()) -> dict[str, Any]:
    """Call every implementation of ``hook_name`` in pluggy's order (built-ins first); first owner of a name wins.

    Each implementation is called on its own, so one that raises loses only its own entries.
    """
    pm = get_plugin_manager()
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):  # pluggy calls the list back to front
        plugin = impl.plugin_name
        entries: dict[str, Any] = {}

        def register(name: str, value: Any, _plugin: str = plugin, _entries: dict[str, Any] = entries) -> None:
            if not isinstance(name, str) or not _NAME.fullmatch(name) or name in reserved:
                _warn(f"plugin {_plugin!r}: invalid {kind} name {name!r} ignored")
            elif not callable(value):
                _warn(f"plugin {_plugin!r}: {kind} {name!r} ignored: {value!r} is not callable")
            elif name in found or name in _entries:
                owner = owners.get(name, _plugin)
                _warn(f"plugin {_plugin!r}: {kind} {name!r} ignored: already registered by {owner!r}")
            else:
                _entries[name] = value

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except Exception as e:  # noqa: BLE001 - a plugin's failing hook costs only its own entries
            _warn(f"plugin {plugin!r}: {hook_name} failed, its {kind}s are skipped: {type(e).__name__}: {e}")
            continue
        found.update(entries)
        owners.update(dict.fromkeys(entries, plugin))
    return found
