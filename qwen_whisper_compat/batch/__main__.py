"""``python -m qwen_whisper_compat.batch``: the ``qwen-whisper-batch`` command."""

from qwen_whisper_compat.batch.cli import run

run()
