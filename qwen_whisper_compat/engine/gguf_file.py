"""A fast, read-only index of a GGUF file: scalar metadata and tensor locations, tensors memory-mapped.

``gguf.GGUFReader`` parses every metadata array into numpy objects (the 151k tokens and 294k merges of the
Qwen vocabulary take it about 9 s); the runtime only needs a few scalars and the ``token_embd`` rows, so
this walks the header once, skipping arrays, in well under a second. :class:`TokenEmbeddings` reads the
decoder's token-embedding rows through it (the text rows of an embedding prompt).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.errors import ModelFolderError

_MAGIC = b"GGUF"
# GGUF metadata value types -> struct format of one scalar
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lies in the file."""

    name: str
    #: ggml order: shape[0] is the contiguous (row) dimension.
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # absolute byte offset


class GGUFIndex:
    """Scalar metadata and tensor table of a GGUF file; tensor bytes are memory-mapped on demand."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.metadata: dict[str, Any] = {}
        self.tensors: dict[str, TensorInfo] = {}
        try:
            with open(self.path, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as e:
            raise ModelFolderError(f"cannot open GGUF file {self.path}: {e}") from e
        try:
            self._parse()
        except (struct.error, IndexError, UnicodeDecodeError) as e:
            raise ModelFolderError(f"{self.path} is not a valid GGUF file (truncated or damaged header)") from e

    def _parse(self) -> None:
        mm = self._mm
        if mm[:4] != _MAGIC:
            raise ModelFolderError(f"{self.path} is not a GGUF file")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", mm, 4)
        if version < 2:
            raise ModelFolderError(f"{self.path} uses GGUF version {version}; version 2 or newer is needed")
        pos = 24
        for _ in range(n_kv):
            key, pos = self._string(pos)
            (vtype,), pos = struct.unpack_from("<I", mm, pos), pos + 4
            value, pos = self._value(vtype, pos)
            self.metadata[key] = value
        infos = []
        for _ in range(n_tensors):
            name, pos = self._string(pos)
            (n_dims,) = struct.unpack_from("<I", mm, pos)
            dims = struct.unpack_from(f"<{n_dims}Q", mm, pos + 4)
            ggml_type, offset = struct.unpack_from("<IQ", mm, pos + 4 + 8 * n_dims)
            pos += 4 + 8 * n_dims + 12
            infos.append((name, tuple(int(d) for d in dims), int(ggml_type), int(offset)))
        align = int(self.metadata.get("general.alignment", 32))
        data_start = (pos + align - 1) // align * align
        for name, dims, ggml_type, offset in infos:
            self.tensors[name] = TensorInfo(name, dims, ggml_type, data_start + offset)

    def _string(self, pos: int) -> tuple[str, int]:
        (n,) = struct.unpack_from("<Q", self._mm, pos)
        return self._mm[pos + 8 : pos + 8 + n].decode("utf-8"), pos + 8 + n

    def _value(self, vtype: int, pos: int) -> tuple[Any, int]:
        if vtype in _SCALARS:
            fmt = "<" + _SCALARS[vtype]
            return struct.unpack_from(fmt, self._mm, pos)[0], pos + struct.calcsize(fmt)
        if vtype == _STRING:
            return self._string(pos)
        if vtype == _ARRAY:
            etype, count = struct.unpack_from("<IQ", self._mm, pos)
            pos += 12
            if etype in _SCALARS:  # numeric arrays: skipped in one step, their length kept
                return _Skipped(count), pos + count * struct.calcsize("<" + _SCALARS[etype])
            for _ in range(count):
                _, pos = self._value(etype, pos)
            return _Skipped(count), pos
        raise ModelFolderError(f"{self.path}: unknown GGUF metadata type {vtype}")

    def tensor_bytes(self, name: str) -> bytes:
        """The raw (possibly quantized) bytes of tensor ``name``."""
        import gguf

        info = self.tensors[name]
        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(info.ggml_type)]
        n = int(np.prod(info.shape)) // block * type_size
        return self._mm[info.offset : info.offset + n]

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of 2-D tensor ``name`` as float32 ``[len(ids), shape[0]]`` (dequantized)."""
        import gguf

        info = self.tensors[name]
        width, n_rows = info.shape[0], info.shape[1]
        qtype = gguf.GGMLQuantizationType(info.ggml_type)
        block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        row_bytes = width // block * type_size
        raw = np.frombuffer(self._mm, dtype=np.uint8, count=n_rows * row_bytes, offset=info.offset)
        picked = raw.reshape(n_rows, row_bytes)[ids]
        out: np.ndarray
        if qtype == gguf.GGMLQuantizationType.F32:
            out = picked.view(np.float32).copy()
        elif qtype == gguf.GGMLQuantizationType.F16:
            out = picked.view(np.float16).astype(np.float32)
        else:
            out = np.asarray(gguf.quants.dequantize(picked, qtype), dtype=np.float32).reshape(len(ids), width)
        return out

    def close(self) -> None:
        """Unmap the file."""
        self._mm.close()


@dataclass(frozen=True)
class _Skipped:
    """Placeholder for a metadata array that was skipped; keeps its length."""

    length: int


class TokenEmbeddings:
    """Rows of the GGUF's ``token_embd.weight`` as float32, dequantized on demand."""

    def __init__(self, path: Path) -> None:
        self.index = GGUFIndex(path)
        info = self.index.tensors.get("token_embd.weight")
        if info is None or len(info.shape) != 2:
            raise ModelFolderError(f"{path} has no 2-D token_embd.weight tensor")
        self.n_embd, self.n_vocab = info.shape

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        """Embeddings of ``ids`` as a float32 ``[len(ids), n_embd]`` array."""
        return self.index.rows("token_embd.weight", np.asarray(ids, dtype=np.int64))
