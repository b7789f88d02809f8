"""Reading an official Qwen3-ASR / Qwen3-ForcedAligner checkpoint folder with numpy only.

The released weights are bfloat16 safetensors (one file, or shards listed in
``model.safetensors.index.json``). numpy has no bfloat16, so tensors are read as raw 16-bit words and
widened bit-exactly to float32 (a bf16 value is the top half of the float32 with the same value).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qwen_whisper_compat.engine.languages import ALIGNER_LANGUAGES, ASR_LANGUAGES
from qwen_whisper_compat.engine.manifest import DecoderDims, EncoderDims, Kind, SpecialTokens
from qwen_whisper_compat.engine.modeldir import read_json_object, sha256_file
from qwen_whisper_compat.errors import CheckpointError

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

_DTYPES: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 on read
    "F64": np.dtype("<f8"),
}

# Special tokens by text; their ids are looked up in the checkpoint's own tokenizer and checked against
# config.json (reference/qwen3_asr.md 4.1).
_TOKEN_NAMES = {
    "endoftext": "<|endoftext|>",
    "im_start": "<|im_start|>",
    "im_end": "<|im_end|>",
    "audio_start": "<|audio_start|>",
    "audio_end": "<|audio_end|>",
    "audio_pad": "<|audio_pad|>",
    "asr_text": "<asr_text>",
}
TIMESTAMP_TOKEN = "<timestamp>"

@dataclass(frozen=True)
class _TensorEntry:
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    end: int


class SafetensorsFile:
    """One ``.safetensors`` file, validated on open and read lazily through a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with open(path, "rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    raise CheckpointError(f"{path} is not a safetensors file (only {size} bytes)")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > 100 << 20:
                    raise CheckpointError(f"{path} is truncated or not a safetensors file (bad header size)")
                header = json.loads(fh.read(n))
        except OSError as e:
            raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from e
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path} is not a safetensors file (unreadable header)") from e
        base = 8 + n
        self.entries: dict[str, _TensorEntry] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = info.get("dtype")
            if dtype not in _DTYPES:
                raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
            begin, end = info["data_offsets"]
            shape = tuple(int(d) for d in info["shape"])
            expected = int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype].itemsize
            if end - begin != expected:
                raise CheckpointError(f"{path}: tensor {name!r} has inconsistent size in the header")
            if base + end > size:
                raise CheckpointError(
                    f"{path} is truncated: tensor {name!r} ends at byte {base + end} but the file has "
                    f"{size} bytes; download the checkpoint again"
                )
            self.entries[name] = _TensorEntry(path, dtype, shape, base + begin, base + end)

    def read(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 (a fresh array; the file is not kept open)."""
        e = self.entries[name]
        raw_dtype = _DTYPES[e.dtype]
        count = (e.end - e.start) // raw_dtype.itemsize
        raw = np.fromfile(e.file, dtype=raw_dtype, count=count, offset=e.start)
        if e.dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32).reshape(e.shape)
        return raw.astype(np.float32, copy=False).reshape(e.shape)


class Checkpoint:
    """An official Qwen3-ASR or Qwen3-ForcedAligner checkpoint folder.

    Raises CheckpointError (one line, naming the file) when the folder is not one, lacks files, or has
    truncated weights.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise CheckpointError(f"checkpoint folder {str(self.path)!r} does not exist or is not a folder")
        self.config = _read_json(self.path / "config.json", what="config.json")
        self.kind: Kind = _detect_kind(self.config, self.path)
        thinker = self.config["thinker_config"]
        self.audio_config: Mapping[str, Any] = thinker.get("audio_config") or {}
        self.text_config: Mapping[str, Any] = thinker.get("text_config") or {}
        self.weight_files = _weight_files(self.path)
        self._files = {f: SafetensorsFile(self.path / f) for f in self.weight_files}
        self._where: dict[str, SafetensorsFile] = {}
        for sf in self._files.values():
            for name in sf.entries:
                self._where[name] = sf

    # ----------------------------------------------------------------------------------------- tensors
    def names(self) -> list[str]:
        """All tensor names, in file order."""
        return list(self._where)

    def has(self, name: str) -> bool:
        """Whether the checkpoint holds tensor ``name``."""
        return name in self._where

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32."""
        try:
            sf = self._where[name]
        except KeyError:
            raise CheckpointError(
                f"checkpoint {str(self.path)!r} has no tensor {name!r}; is it a complete Qwen3-ASR checkpoint?"
            ) from None
        return sf.read(name)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of tensor ``name`` without reading it."""
        return self._where[name].entries[name].shape

    def source_hashes(self) -> Iterator[tuple[str, str]]:
        """(file name, sha256) of every weight file."""
        for f in self.weight_files:
            yield f, sha256_file(self.path / f)

    # ------------------------------------------------------------------------------------- dimensions
    @property
    def name(self) -> str:
        """A human name for the checkpoint (its folder name)."""
        return self.path.resolve().name

    def encoder_dims(self) -> EncoderDims:
        """Audio-encoder dimensions from config.json."""
        a = self.audio_config
        try:
            return EncoderDims(
                n_mels=int(a["num_mel_bins"]),
                d_model=int(a["d_model"]),
                layers=int(a["encoder_layers"]),
                heads=int(a["encoder_attention_heads"]),
                ffn_dim=int(a["encoder_ffn_dim"]),
                conv_channels=int(a["downsample_hidden_size"]),
                output_dim=int(a["output_dim"]),
                n_window=int(a["n_window"]),
                n_window_infer=int(a["n_window_infer"]),
            )
        except KeyError as e:
            raise CheckpointError(f"config.json: thinker_config.audio_config has no {e.args[0]!r}") from e

    def decoder_dims(self) -> DecoderDims:
        """Text-decoder dimensions from config.json."""
        t = self.text_config
        try:
            hidden = int(t["hidden_size"])
            heads = int(t["num_attention_heads"])
            return DecoderDims(
                hidden=hidden,
                layers=int(t["num_hidden_layers"]),
                heads=heads,
                kv_heads=int(t.get("num_key_value_heads", heads)),
                head_dim=int(t.get("head_dim") or hidden // heads),
                intermediate=int(t["intermediate_size"]),
                vocab_size=int(t["vocab_size"]),
                rope_theta=float(t.get("rope_theta", 1_000_000.0)),
                rms_norm_eps=float(t.get("rms_norm_eps", 1e-6)),
                tie_word_embeddings=bool(t.get("tie_word_embeddings", self.kind == "asr")),
                classify_num=int(self.config["thinker_config"].get("classify_num", 5000))
                if self.kind == "aligner"
                else 0,
            )
        except KeyError as e:
            raise CheckpointError(f"config.json: thinker_config.text_config has no {e.args[0]!r}") from e

    def special_tokens(self, vocab: Mapping[str, int], special_ids: tuple[int, ...] = ()) -> SpecialTokens:
        """Special token ids, looked up in the tokenizer and checked against config.json."""
        ids: dict[str, int] = {}
        for field_name, text in _TOKEN_NAMES.items():
            if text not in vocab:
                raise CheckpointError(f"the checkpoint's tokenizer has no {text} token")
            ids[field_name] = vocab[text]
        thinker = self.config["thinker_config"]
        for key, field_name in (
            ("audio_token_id", "audio_pad"),
            ("audio_start_token_id", "audio_start"),
            ("audio_end_token_id", "audio_end"),
        ):
            if key in thinker and int(thinker[key]) != ids[field_name]:
                raise CheckpointError(
                    f"config.json says {key}={thinker[key]} but the tokenizer has id {ids[field_name]}"
                )
        timestamp = None
        if self.kind == "aligner":
            timestamp = int(self.config.get("timestamp_token_id", vocab.get(TIMESTAMP_TOKEN, -1)))
            if vocab.get(TIMESTAMP_TOKEN) != timestamp:
                raise CheckpointError("the aligner's tokenizer has no <timestamp> token matching config.json")
        return SpecialTokens(
            endoftext=ids["endoftext"],
            im_start=ids["im_start"],
            im_end=ids["im_end"],
            audio_start=ids["audio_start"],
            audio_end=ids["audio_end"],
            audio_pad=ids["audio_pad"],
            asr_text=ids["asr_text"],
            eos=(ids["im_end"], ids["endoftext"]),
            timestamp=timestamp,
            special=special_ids,
        )

    def languages(self) -> tuple[str, ...]:
        """Languages the model supports (config.json ``support_languages``, else the released list)."""
        langs = self.config.get("support_languages")
        if isinstance(langs, list) and langs:
            return tuple(str(x) for x in langs)
        return ALIGNER_LANGUAGES if self.kind == "aligner" else ASR_LANGUAGES

    def timestamp_segment_ms(self) -> int | None:
        """Milliseconds per aligner timestamp class (80 for the released aligner)."""
        if self.kind != "aligner":
            return None
        return int(self.config.get("timestamp_segment_time", 80))


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(
            f"{str(path.parent)!r} has no {what}: point the converter at an official Qwen3-ASR or "
            "Qwen3-ForcedAligner checkpoint folder"
        )
    return read_json_object(path, CheckpointError)


def _detect_kind(config: Mapping[str, Any], folder: Path) -> Kind:
    model_type = config.get("model_type")
    thinker = config.get("thinker_config")
    if model_type != "qwen3_asr" or not isinstance(thinker, dict):
        raise CheckpointError(
            f"{str(folder)!r} is not a Qwen3-ASR checkpoint (config.json model_type is {model_type!r}, "
            "expected 'qwen3_asr'); only Qwen3-ASR-0.6B/1.7B and Qwen3-ForcedAligner-0.6B are supported"
        )
    if thinker.get("model_type") == "qwen3_forced_aligner" or "classify_num" in thinker:
        return "aligner"
    return "asr"


def _weight_files(folder: Path) -> list[str]:
    index = folder / INDEX_NAME
    if index.is_file():
        data = _read_json(index, what=INDEX_NAME)
        weight_map = data.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index} has no weight_map")
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(folder)!r} is missing weight shard(s) {', '.join(missing)} listed in {INDEX_NAME}"
            )
        return files
    if (folder / SINGLE_NAME).is_file():
        return [SINGLE_NAME]
    raise CheckpointError(f"checkpoint {str(folder)!r} has no {SINGLE_NAME} and no {INDEX_NAME}")
