"""The forced aligner's decoder as an onnxruntime graph: prompt rows in, timestamp-class logits at the slots out.

The aligner only prefills (no generation, no KV cache to keep, the head read at the ``<timestamp>`` rows
only), so it needs no llama.cpp context: convert/onnx_aligner.py writes its layer stack and head as one graph
(role ``aligner_decoder`` in the manifest). The folder's GGUF is still read, but never loaded as a model: the
words are tokenized by llama.cpp over its vocabulary alone (:class:`~.gguf_vocab.GGUFVocab`), and the few
text rows of a prompt are read from its memory-mapped ``token_embd`` (:class:`~.gguf_file.TokenEmbeddings`).

Threads: ``InferenceSession.run`` is thread-safe, but one call already uses every core, so calls take turns
(:class:`~.turns.Turns`: live work first), as they do on a llama.cpp context.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qwen_whisper_compat.engine.encoder import open_session
from qwen_whisper_compat.engine.gguf_file import TokenEmbeddings
from qwen_whisper_compat.engine.turns import Turns
from qwen_whisper_compat.errors import ModelFolderError

#: The graph's inputs and output.
EMBEDS_NAME = "inputs_embeds"
SLOTS_NAME = "slots"
LOGITS_NAME = "timestamp_logits"


class OnnxAlignerDecoder:
    """The aligner decoder graph of a model folder, with the GGUF's vocabulary and token rows.

    Args:
        graph: The ``aligner_decoder.*.onnx`` file.
        gguf: The folder's decoder GGUF (vocabulary and ``token_embd`` only).
        providers: onnxruntime execution providers (default: CPU).
        threads: Intra-op threads (0 = onnxruntime's default, all physical cores).
    """

    def __init__(
        self,
        graph: str | os.PathLike[str],
        gguf: str | os.PathLike[str],
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:
        from qwen_whisper_compat.engine.gguf_vocab import GGUFVocab

        self.path = Path(graph)
        self._session = open_session(graph, providers, threads)
        inputs = {i.name: i for i in self._session.get_inputs()}
        if set(inputs) != {EMBEDS_NAME, SLOTS_NAME}:
            raise ModelFolderError(f"{graph} is not an aligner decoder graph (inputs {sorted(inputs)})")
        self.n_embd = int(inputs[EMBEDS_NAME].shape[1])
        self.n_classes = int(self._session.get_outputs()[0].shape[1])
        self.token_embeddings = TokenEmbeddings(Path(gguf))
        if self.token_embeddings.n_embd != self.n_embd:
            raise ModelFolderError(f"{gguf}: token_embd width differs from the aligner graph's {self.n_embd}")
        self._vocab = GGUFVocab(gguf)
        #: Who runs a pass now, and who goes next (one pass uses every core).
        self.turns = Turns()

    def tokenize(self, text: str) -> list[int]:
        """Plain BPE of ``text``, as the llama.cpp path tokenizes it."""
        return self._vocab.tokenize(text)

    def logits(self, embeds: np.ndarray, slots: Sequence[int]) -> np.ndarray:
        """Timestamp-class logits ``[len(slots), n_classes]`` of one causal pass over ``embeds`` ``[L, n_embd]``
        (positions 0..L-1), read at rows ``slots``."""
        feed = {
            EMBEDS_NAME: np.ascontiguousarray(embeds, dtype=np.float32),
            SLOTS_NAME: np.asarray(slots, dtype=np.int64),
        }
        (out,) = self._session.run([LOGITS_NAME], feed)
        assert isinstance(out, np.ndarray)
        return out

    def close(self) -> None:
        """Free the vocabulary and unmap the GGUF (the session goes with the object)."""
        self._vocab.close()
        self.token_embeddings.index.close()
