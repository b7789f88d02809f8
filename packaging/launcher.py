"""The standalone executable's entry point: one program, several commands, chosen by the name it runs under.

``whisper`` and ``qwen-whisper`` (and any name not listed, so a renamed download still works) run the
whisper-style CLI; ``qwen-whisper-convert``, ``qwen-whisper-live`` and ``qwen-whisper-server`` run those
commands. The build puts a link (a copy on Windows) under each name next to the program, as busybox does.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import sys

#: Program name (lower case, without ``.exe``) -> module whose ``main(argv) -> int`` runs it.
COMMANDS = {
    "qwen-whisper": "qwen_whisper_compat.cli",
    "whisper": "qwen_whisper_compat.cli",
    "qwen-whisper-convert": "qwen_whisper_compat.convert.cli",
    "qwen-whisper-live": "qwen_whisper_compat.live_cli",
    "qwen-whisper-server": "qwen_whisper_server.cli",
}
DEFAULT = "qwen-whisper"


def command_for(program: str) -> str:
    """The command a program path runs: its file name without a Windows extension, or the default."""
    name = os.path.basename(program).lower().removesuffix(".exe")
    return name if name in COMMANDS else DEFAULT


def main() -> None:
    multiprocessing.freeze_support()  # a frozen program must say so before anything spawns (Windows, macOS)
    command = command_for(sys.argv[0])
    # argparse names the program after argv[0]; keep the name the user typed (whisper, qwen-whisper, ...)
    module = importlib.import_module(COMMANDS[command])
    sys.exit(module.main(sys.argv[1:]))


if __name__ == "__main__":
    main()
