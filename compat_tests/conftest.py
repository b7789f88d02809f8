"""The compat tests reuse the fixtures of tests/conftest.py (tiny models, shared audio, the mirror hub)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("qwc_fixtures", Path(__file__).parents[1] / "tests" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

shared_audio = _fixtures.shared_audio
jfk = _fixtures.jfk
tiny_checkpoint = _fixtures.tiny_checkpoint
asr_ckpt = _fixtures.asr_ckpt
aligner_ckpt = _fixtures.aligner_ckpt
hub_mirror = _fixtures.hub_mirror
model_env = _fixtures.model_env
tiny_whisper = _fixtures.tiny_whisper


def install_distribution(path: Path) -> None:
    """pip-install the distribution at ``path`` (an adapter or a test plugin) into the running environment,
    without dependencies (they are test dependencies already) and without build isolation (hatchling is a
    test dependency), so no network is needed. Idempotent: reinstalls only when the source changed."""
    import hashlib
    import importlib
    import subprocess
    import sys

    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    stamp = Path(sys.prefix) / f".qwc-installed-{path.name}"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(path)],
        check=True,
    )
    stamp.write_text(digest.hexdigest())
    importlib.invalidate_caches()
