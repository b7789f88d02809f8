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
