"""A model source that holds a model's load until a test opens a gate: a real slow load for the servers'
"listen first, 503 while loading" tests.

The model name ``gated`` resolves, once the file ``$QWC_GATE`` exists, to the folder ``$QWC_GATED_FOLDER``; a
gate file that says ``fail`` fails the load instead. :func:`plugin_env` makes a server subprocess load this
module as an entry-point plugin of ``qwen_whisper_compat`` (``register_model_sources``) from a temporary folder,
so nothing is installed into the environment and no other process sees it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwen_whisper_compat.plugins import hookimpl

NAME = "gated"
GATE_ENV = "QWC_GATE"
FOLDER_ENV = "QWC_GATED_FOLDER"
#: The longest a load waits for its gate.
WAIT_SECONDS = 120.0


def resolve(name: str) -> str | None:
    """The gated folder for ``gated`` once the gate is open (``None`` for other names)."""
    if name != NAME:
        return None
    gate = Path(os.environ[GATE_ENV])
    deadline = time.monotonic() + WAIT_SECONDS
    while not gate.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {gate} was not opened within {WAIT_SECONDS} s")
        time.sleep(0.05)
    if gate.read_text(encoding="utf-8").strip() == "fail":
        raise RuntimeError("the test's gate says this load fails")
    return os.environ[FOLDER_ENV]


@hookimpl
def register_model_sources(register: Callable[[str, Any], None]) -> None:
    register("gated", resolve)


def plugin_env(folder: Path, model: Path, gate: Path) -> dict[str, str]:
    """Environment for a subprocess in which ``load_model("gated")`` waits for ``gate`` and loads ``model``;
    this module and its entry-point metadata are written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qwc_gated_source.py").write_text(Path(__file__).read_text(encoding="utf-8"), encoding="utf-8")
    info = folder / "qwc_gated_source-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qwc-gated-source\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qwen_whisper_compat]\ngated = qwc_gated_source\n")
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, GATE_ENV: str(gate), FOLDER_ENV: str(model)}
