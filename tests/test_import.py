"""``import qwen_whisper_compat`` stays light: no inference runtime, no conversion or test dependency."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("onnxruntime", "llama_cpp", "torch", "transformers", "onnx", "gguf", "av")

PROBE = f"""
import sys
import qwen_whisper_compat
import qwen_whisper_compat.engine.modeldir, qwen_whisper_compat.engine.prompt, qwen_whisper_compat.errors
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
