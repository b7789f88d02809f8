"""``qwen-whisper-convert SRC OUT [--encoder P] [--decoder P]``: the converter's command line.

The only module of the converter that prints. Errors are one line on stderr with exit status 1
(``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from qwen_whisper_compat.convert.converter import DEFAULT_DECODER, DEFAULT_ENCODER, convert_checkpoint
from qwen_whisper_compat.engine.manifest import DECODER_PRECISIONS, ENCODER_PRECISIONS
from qwen_whisper_compat.errors import QwenWhisperError

PROG = "qwen-whisper-convert"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Convert an official Qwen3-ASR / Qwen3-ForcedAligner checkpoint folder into a "
        "qwen-whisper-compat model folder (ONNX audio encoder + GGUF text decoder).",
    )
    p.add_argument("src", help="checkpoint folder (config.json, *.safetensors, tokenizer files)")
    p.add_argument("out", help="model folder to create")
    p.add_argument("--encoder", choices=ENCODER_PRECISIONS, default=DEFAULT_ENCODER, help="encoder precision")
    p.add_argument("--decoder", choices=DECODER_PRECISIONS, default=DEFAULT_DECODER, help="decoder precision")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--threads", type=int, default=0, help="threads for quantization (0 = all CPUs)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true", help="debug log, tracebacks on errors")
    return p.parse_args(argv)


class _ProgressLine:
    """Renders (stage, done, total) as one rewritten line on stderr."""

    def __init__(self) -> None:
        self._last = 0.0
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage == self._stage and done < total and now - self._last < 0.2:
            return
        self._last, self._stage = now, stage
        label = {"encoder": "encoder layers", "decoder": "decoder tensors", "quantize": "quantizing decoder"}
        end = "\n" if done >= total else ""
        print(f"\r{label.get(stage, stage)}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the converter; returns the process exit status."""
    args = parse_args(argv)
    # our own progress messages at INFO; other libraries' (onnxruntime's quantizer reports every
    # MatMul it skips, gguf notes each file it writes) only from WARNING up unless -v
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    ours = logging.getLogger("qwen_whisper_compat")
    ours.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    if not args.verbose:
        logging.getLogger("qwen_whisper_compat.llama").setLevel(logging.WARNING)  # llama.cpp's model dumps
    try:
        model_dir = convert_checkpoint(
            args.src,
            args.out,
            encoder=args.encoder,
            decoder=args.decoder,
            overwrite=args.force,
            threads=args.threads,
            progress=None if args.quiet else _ProgressLine(),
        )
    except QwenWhisperError as e:
        if args.verbose:
            logging.getLogger("qwen_whisper_compat.convert").exception("conversion failed")
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        files = ", ".join(f.path for f in model_dir.manifest.files)
        print(f"wrote {model_dir.path} ({model_dir.manifest.kind}: {files})")
    return 0
