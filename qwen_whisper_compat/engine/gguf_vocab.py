"""The tokenizer of a GGUF decoder without its weights: llama.cpp loads the file with ``vocab_only``.

The onnxruntime aligner (:mod:`.aligner_onnx`) tokenizes its words exactly as the llama.cpp path does, with
llama.cpp's own BPE over the GGUF's vocabulary, but maps none of the weights: a vocabulary-only model holds
the 152k tokens and merges (tens of MB), not the 0.6B decoder.
"""

from __future__ import annotations

import contextlib
import os
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from qwen_whisper_compat.engine.llama_runtime import llama
from qwen_whisper_compat.errors import ModelFolderError


def tokenize(lib: Any, vocab: Any, text: str) -> list[int]:
    """Plain BPE of ``text`` with llama.cpp's ``vocab``: no BOS, special-token text is not parsed."""
    data = text.encode("utf-8")
    cap = len(data) + 8
    buf = (lib.llama_token * cap)()
    n = lib.llama_tokenize(vocab, data, len(data), buf, cap, False, False)
    if n < 0:
        raise RuntimeError(f"llama_tokenize needs {-n} slots")
    return list(buf[:n])


class GGUFVocab:
    """The vocabulary of a GGUF file, loaded without its tensors (thread-safe: tokenizing reads only)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._llama = lib = llama()
        self.path = Path(path)
        self._stack = ExitStack()
        self._lock = threading.Lock()
        params = lib.llama_model_default_params()
        params.vocab_only = True
        model = lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not model:
            raise ModelFolderError(f"llama.cpp could not read the vocabulary of {self.path}")
        self._stack.callback(lib.llama_model_free, model)
        self._vocab: Any = lib.llama_model_get_vocab(model)

    def tokenize(self, text: str) -> list[int]:
        """Plain BPE of ``text``: no BOS, special-token text is not parsed."""
        if self._vocab is None:
            raise RuntimeError(f"the vocabulary of {self.path} is closed")
        return tokenize(self._llama, self._vocab, text)

    def close(self) -> None:
        """Free the native vocabulary (idempotent)."""
        with self._lock:
            self._vocab = None
            self._stack.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: llama_cpp may already be gone
            self.close()
