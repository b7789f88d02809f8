"""llama.cpp through llama-cpp-python: the import, the native log routed into ``logging``, the backend set-up.

This module and the modules that call :func:`llama` (:mod:`.decoder`, :mod:`.hidden_capture`,
:mod:`.llama_quantize`, :mod:`.gguf_vocab`) are the only users of ``llama_cpp``. Nothing is imported or
initialised until the first call, so importing the package stays cheap.

llama.cpp's own log lines go to the logger ``qwen_whisper_compat.llama`` through llama.cpp's log callback:
nothing is printed and no file descriptor is redirected.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import threading
from typing import Any

_native_logger = logging.getLogger("qwen_whisper_compat.llama")
_logger = logging.getLogger(__name__)

_init_lock = threading.Lock()
_initialised = False
_log_callback: Any = None  # keeps the ctypes callback alive for the life of the process
_pending: list[str] = []
_pending_level = logging.DEBUG
# ggml_log_level (ggml.h): 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous line.
# llama.cpp's info output is a model dump per load; it goes to DEBUG so that INFO stays readable.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}


def llama() -> Any:
    """The ``llama_cpp`` module, with its native log routed into logging and the backend initialised once."""
    global _initialised, _log_callback
    import llama_cpp

    with _init_lock:
        if not _initialised:

            @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
            def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
                global _pending_level
                if level != 5:
                    _pending_level = _LEVELS.get(level, logging.DEBUG)
                _pending.append(text.decode("utf-8", errors="replace"))
                if _pending[-1].endswith("\n"):
                    line = "".join(_pending).rstrip()
                    _pending.clear()
                    # llama.cpp re-types the plain Qwen token "</s>" as a control token on every load; our
                    # text decoding uses the manifest's special ids, so this is noise, not a warning
                    level = logging.DEBUG if "was not control-type" in line else _pending_level
                    if line:
                        _native_logger.log(level, "%s", line)

            _log_callback = _on_log
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _initialised = True
    return llama_cpp


@functools.cache
def has_amx() -> bool:
    """Whether this llama.cpp build runs its AMX kernels here (its system info reports ``AMX_INT8 = 1``, which
    a build compiled for a CPU with Intel AMX does: a source build on Sapphire Rapids or newer). Read once; a
    ``True`` is logged then."""
    amx = b"AMX_INT8 = 1" in bytes(llama().llama_print_system_info())
    if amx:
        _logger.info("llama.cpp was built with AMX kernels, which crash on these decoders: they are not used")
    return amx


def model_params(n_gpu_layers: int = 0) -> Any:
    """``llama_model_params`` for our decoders.

    Where llama.cpp would put the quantized weights in its AMX buffer, its extra CPU buffer types are turned
    off: llama.cpp 0.3.36's AMX matrix multiply (``ggml_backend_amx_mul_mat``) crashes the process on our
    q8_0 and q4_k decoders as soon as a batch holds more than one row, on tiny and 0.6B shapes alike (seen
    on a Sapphire Rapids VM; ggml-org/llama.cpp#20824 reports the same crash). The weight repacking for wide
    vector units is one of those buffer types, so it is off there too; q8_0, the default, is not repacked
    on x86 anyway.
    """
    params = llama().llama_model_default_params()
    params.n_gpu_layers = n_gpu_layers
    if has_amx():
        params.use_extra_bufts = False
    return params


def default_threads() -> int:
    """Threads for llama.cpp: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
