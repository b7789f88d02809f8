"""``python -m qwen_whisper_server``: the same as the ``qwen-whisper-server`` command."""

import sys

from qwen_whisper_server.cli import main

sys.exit(main())
