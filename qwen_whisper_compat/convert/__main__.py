"""``python -m qwen_whisper_compat.convert``: the converter's command line."""

from qwen_whisper_compat.convert.cli import main

raise SystemExit(main())
