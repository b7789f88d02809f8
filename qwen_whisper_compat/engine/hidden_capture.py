"""Reading final hidden states out of llama.cpp mid-graph, so that the vocabulary head is never computed.

The forced aligner needs the final-norm hidden state at a few rows of one causal pass; its own 5000-class
head is applied in numpy. llama.cpp's context would compute the full ``n_outputs x n_vocab`` output head
for those rows; a ggml scheduler callback copies the ``result_norm`` node instead and stops the graph there.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np


class HiddenCapture:
    """A ggml scheduler callback (``cparams.cb_eval``) that copies the final-norm hidden states
    ("result_norm") of the output rows while llama.cpp computes a batch, then stops that graph.

    Args:
        lib: The ``llama_cpp`` module (see :func:`.llama_runtime.llama`).
        n_embd: Width of a hidden state.
    """

    NAME = b"result_norm"

    def __init__(self, lib: Any, n_embd: int) -> None:
        from llama_cpp import _ggml

        ggml = _ggml.libggml
        ggml.ggml_get_name.argtypes, ggml.ggml_get_name.restype = [ctypes.c_void_p], ctypes.c_char_p
        ggml.ggml_nbytes.argtypes, ggml.ggml_nbytes.restype = [ctypes.c_void_p], ctypes.c_size_t
        ggml.ggml_backend_tensor_get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t]
        ggml.ggml_backend_tensor_get.restype = None
        #: Hidden states captured since the last :meth:`start`, one array per graph split.
        self.rows: list[np.ndarray] = []
        self.active = False
        self.n_embd = n_embd

        def callback(tensor: int, ask: bool, user_data: int) -> bool:
            if ask:  # do we want to see this node?
                return self.active and ggml.ggml_get_name(tensor) == self.NAME
            size = ggml.ggml_nbytes(tensor)
            rows = np.empty(size // 4, dtype=np.float32)
            ggml.ggml_backend_tensor_get(tensor, rows.ctypes.data, 0, size)
            self.rows.append(rows.reshape(-1, n_embd))
            return False  # stop here: skip the output head

        #: The ctypes callback to put into the context parameters (kept alive by this object).
        self.callback = lib.ggml_backend_sched_eval_callback(callback)

    def start(self) -> None:
        """Capture the next evaluations."""
        self.rows, self.active = [], True

    def stop(self) -> np.ndarray:
        """Stop capturing; the hidden states captured, ``[n, n_embd]``."""
        self.active = False
        captured = np.concatenate(self.rows) if self.rows else np.empty((0, self.n_embd), dtype=np.float32)
        self.rows = []
        return captured
