"""``python -m qwen_whisper_compat``: the whisper-style command line."""

from qwen_whisper_compat.cli import run

run()
