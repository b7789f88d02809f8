"""The package's import boundaries, read from the source (``ast``), not from a run:

- the whisper-shaped faces (every module outside the engine, the converter, the seam and the few that share
  the engine's tables) and the host adapters reach the engine only through the recognizer
  (``qwen_whisper_compat/recognizer.py``): they import no ``qwen_whisper_compat.engine`` module;
- no module outside ``engine/`` and the recognizer touches the engine's insides (``.transcriber``,
  ``.decoder``, ``.encoder``, ``.model_dir``); the converter, which writes model folders, is outside the
  transcription path and exempt;
- the writers (``utils.py``) import nothing that imports the engine;
- no import cycle among the engine's modules (``engine/modeldir`` once reached itself through
  ``hzformat`` and ``prompt``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qwen_whisper_compat"
ADAPTERS = ROOT / "adapters"

#: The seam between the faces and the engine: the recognizer (the model facade), its segment shaping, its live
#: half, and the segment rules they apply to engine chunks. They turn engine types into the faces' types.
SEAM = ("recognizer", "shaping", "live", "segments", "postprocess")
#: Modules outside the engine that share its constants and tables (a table in two places would drift):
#: ``audio`` is whisper.audio's twin over the engine's log-mel, ``tokenizer`` maps the engine's language
#: names, ``hub``/``registry`` read the model folder format, ``vad`` runs the engine's one speech/silence rule.
ENGINE_TABLES = ("audio", "tokenizer", "hub", "registry", "vad", "vad.common", "vad.energy", "vad.silero")
#: Outside ``engine/`` (and the converter, which writes model folders, and ``batch/``, checked below), every
#: module of the package is a face: the whisper-shaped APIs, the CLIs, the writers, the servers' shared
#: pieces, plugins. Faces talk to a Recognizer, never to the engine. Computed, so that a new module is covered.
FACES = tuple(
    sorted(
        name
        for path in PACKAGE.rglob("*.py")
        if not {"engine", "convert", "batch", "assets"} & set(path.relative_to(PACKAGE).parts)
        and (name := ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"))
        not in SEAM + ENGINE_TABLES
    )
)
#: Attributes that are the engine's insides (a Transcriber, its decoder/encoder sessions, its model folder).
INSIDES = frozenset({"transcriber", "decoder", "encoder", "model_dir"})
#: Uses of those names that are not the engine's: (file relative to the repository, the expression).
NOT_THE_ENGINE = {
    # the yt-dlp post-processor's own option, named after whisper's --model_dir (its download_root)
    ("adapters/yt-dlp/yt_dlp_plugins/postprocessor/qwen_whisper.py", "self.options.model_dir"),
    # qwen-whisper-live's --model_dir, whisper's name for the model cache
    ("qwen_whisper_compat/live_cli.py", "args.model_dir"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int, bool]]:
    """(module imported, line, at module level) for every import in ``tree``; relative imports resolved.
    ``from pkg import name`` yields ``pkg.name`` too, since ``name`` may be a module."""
    top_level = {id(node) for node in getattr(tree, "body", [])}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno, id(node) in top_level
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno, id(node) in top_level


def engine_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """Where ``source`` imports an engine module (``line: module``)."""
    tree = ast.parse(source)
    return [
        f"{line}: {name}"
        for name, line, _ in imported_modules(tree, module, is_package)
        if name == "qwen_whisper_compat.engine" or name.startswith("qwen_whisper_compat.engine.")
    ]


def insides_touched(source: str, where: str) -> list[str]:
    """Where ``source`` reads or writes one of :data:`INSIDES` (``line: expression``)."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in INSIDES:
            expression = ast.unparse(node)
            if (where, expression) not in NOT_THE_ENGINE:
                found.append(f"{node.lineno}: {expression}")
    return found


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts)


def adapter_files() -> list[Path]:
    return sorted(p for p in ADAPTERS.rglob("*.py") if "__pycache__" not in p.parts)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def batch_files() -> list[Path]:
    return sorted((PACKAGE / "batch").glob("*.py"))


def face_file(face: str) -> Path:
    path = PACKAGE.joinpath(*face.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_every_face_the_issues_named_is_covered() -> None:
    assert {"model", "decoding", "transcribe", "faster", "cli", "streaming", "live_cli", "live_sources", "pcm",
            "utils", "serving", "plugins"} <= set(FACES)  # fmt: skip
    assert len(FACES) >= 20


@pytest.mark.parametrize("path", [face_file(face) for face in FACES] + batch_files() + adapter_files(), ids=relative)
def test_faces_and_adapters_import_no_engine_module(path: Path) -> None:
    assert engine_imports(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py") == []


def test_only_the_batch_package_imports_itself_or_ray() -> None:
    """qwen-whisper-batch is an extra: nothing else in the package imports it, Ray or pyarrow."""
    found = []
    for path in package_files():
        if "batch" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, line, _ in imported_modules(tree, module_name(path), path.name == "__init__.py"):
            if name.split(".")[0] in ("ray", "pyarrow") or name.startswith("qwen_whisper_compat.batch"):
                found.append(f"{relative(path)}:{line}: {name}")
    assert found == []


def test_only_the_engine_and_the_recognizer_touch_the_engines_insides() -> None:
    exempt = ("qwen_whisper_compat/engine/", "qwen_whisper_compat/convert/", "qwen_whisper_compat/recognizer.py")
    touched = {
        relative(path): found
        for path in package_files() + adapter_files()
        if not relative(path).startswith(exempt)
        if (found := insides_touched(path.read_text(encoding="utf-8"), relative(path)))
    }
    assert touched == {}


def _module_graph(module_level_only: bool) -> dict[str, set[str]]:
    """Module -> the package modules it imports: at module level only (what importing it runs), or anywhere
    (a lazy import inside a function runs at call time)."""
    files = {module_name(p): p for p in package_files()}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {
            imported
            for imported, _, top in imported_modules(tree, name, path.name == "__init__.py")
            if (top or not module_level_only) and imported in files and imported != name
        }
    return graph


def test_the_writers_do_not_import_the_engine() -> None:
    graph = _module_graph(module_level_only=True)
    seen, stack = set(), ["qwen_whisper_compat.utils"]
    while stack:
        for imported in graph[stack.pop()] - seen - {"qwen_whisper_compat"}:  # the package itself is not utils'
            seen.add(imported)
            stack.append(imported)
    assert sorted(m for m in seen if m.startswith("qwen_whisper_compat.engine")) == []


def test_no_import_cycle_in_the_engine() -> None:
    graph = _module_graph(module_level_only=False)  # a lazy import is still part of a cycle
    engine = {m for m in graph if m.startswith("qwen_whisper_compat.engine.")}

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node] & engine):
                if nxt == start:
                    return [*path, nxt]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = [cycle for m in sorted(engine) if (cycle := cycle_from(m))]
    assert cycles == []


# ------------------------------------------------------------------------- the checks themselves can fail
FACE_IMPORTING_THE_DECODER = """
from qwen_whisper_compat.engine.decoder import GGUFDecoder
from .engine import pipeline
"""
FACE_REACHING_INSIDE = """
def languages(model):
    return model.recognizer.transcriber.languages
"""


def test_the_import_check_catches_a_face_importing_the_decoder() -> None:
    found = engine_imports(FACE_IMPORTING_THE_DECODER, "qwen_whisper_compat.faster")
    assert "2: qwen_whisper_compat.engine.decoder" in found and "3: qwen_whisper_compat.engine.pipeline" in found


def test_the_insides_check_catches_a_face_touching_the_transcriber() -> None:
    where = "qwen_whisper_compat/faster.py"
    assert insides_touched(FACE_REACHING_INSIDE, where) == ["3: model.recognizer.transcriber"]
    allowed = "self.options.model_dir"
    assert insides_touched(allowed, "adapters/yt-dlp/yt_dlp_plugins/postprocessor/qwen_whisper.py") == []
    assert insides_touched(allowed, where) == ["1: self.options.model_dir"]  # allowed only where listed
