"""``python -m qwen_whisper_wyoming``: the same as the ``qwen-whisper-wyoming`` command."""

import sys

from qwen_whisper_wyoming.cli import run

sys.exit(run())
