"""Benchmarks only: every offline decode of this process decodes exactly ``QWEN_WHISPER_BENCH_TOKENS_PER_SECOND``
tokens per audio second, end-of-sequence ignored, whatever face or command it comes through.

A benchmark that compares the whisper faces (the ``qwen-whisper`` command, ``qwen-whisper-batch``'s Ray workers,
a child process) with the bare engine on random weights must force the same token count on every side; it
runs those processes with this folder first on ``PYTHONPATH`` (``harness.forced_tokens_env``), so Python
imports this module at start-up and it wraps the engine's span decoder there. Nothing of it is in the
package: the production option path knows no benchmark switch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

RATE_ENV = "QWEN_WHISPER_BENCH_TOKENS_PER_SECOND"


def _force() -> None:
    rate = float(os.environ[RATE_ENV])
    from qwen_whisper_compat.engine.spans import SpanDecoder

    def forced(options: Any) -> Any:
        return dataclasses.replace(options, ignore_eos=True, tokens_per_second=rate, token_cap_base=0)

    decode, decode_group = SpanDecoder.decode, SpanDecoder.decode_group

    @functools.wraps(decode)
    def forced_decode(self: Any, enc: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        return decode(self, enc, forced(options), *args, **kwargs)

    @functools.wraps(decode_group)
    def forced_group(self: Any, group: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        return decode_group(self, group, forced(options), *args, **kwargs)

    SpanDecoder.decode, SpanDecoder.decode_group = forced_decode, forced_group  # type: ignore[method-assign]


if os.environ.get(RATE_ENV):
    _force()
