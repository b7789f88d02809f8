"""What ``manifest.json`` says: the model folder format's types, and parsing them from JSON.

A model folder holds one converted model: an ONNX audio encoder, a GGUF text decoder (tokenizer inside)
and, for the forced aligner, the timestamp-classification head as a small ``.npy`` file and, where the
converter wrote it (role ``aligner_decoder``; folders without it still load), the decoder and head as one
onnxruntime graph. The manifest records where it came from (checkpoint files and their sha256), every
dimension the runtime needs, the special token ids, the supported languages, and each file with its
precision, size and sha256.

This module owns those types and their JSON form; it opens no file (see :mod:`.modeldir`) and imports
nothing heavy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from qwen_whisper_compat.errors import ModelFolderError

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "qwen-whisper-compat/model"
#: Manifest layouts this runtime can read. A converter that changes the layout bumps the number.
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = frozenset({1})

Kind = Literal["asr", "aligner"]
Role = Literal["encoder", "encoder_frontend", "encoder_backend", "decoder", "timestamp_head", "aligner_decoder"]
ENCODER_PRECISIONS = ("fp32", "fp16", "int8", "int4")
DECODER_PRECISIONS = ("f32", "f16", "q8_0", "q4_k")
#: Precisions of the aligner's onnxruntime decoder graph (role ``aligner_decoder``; "none" writes none).
ALIGNER_GRAPH_PRECISIONS = ("int8", "fp32", "none")


@dataclass(frozen=True)
class EncoderDims:
    """Dimensions of the AuT audio encoder (``thinker_config.audio_config``)."""

    n_mels: int
    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    conv_channels: int
    output_dim: int
    n_window: int
    n_window_infer: int

    @property
    def chunk_frames(self) -> int:
        """Mel frames per convolution chunk (100 for the released models)."""
        return 2 * self.n_window

    @property
    def tokens_per_chunk(self) -> int:
        """Encoder tokens produced by one full convolution chunk (13)."""
        return _conv_out_len(self.chunk_frames)

    @property
    def window_tokens(self) -> int:
        """Tokens per attention window (104 = 8 s for the released models)."""
        return self.tokens_per_chunk * (self.n_window_infer // self.chunk_frames)

    def output_length(self, n_frames: int) -> int:
        """Number of audio embeddings (``<|audio_pad|>`` tokens) for ``n_frames`` mel frames."""
        full, rest = divmod(n_frames, self.chunk_frames)
        return full * self.tokens_per_chunk + _conv_out_len(rest)


def _conv_out_len(n: int) -> int:
    for _ in range(3):  # three stride-2 convolutions with padding 1
        n = (n - 1) // 2 + 1 if n > 0 else 0
    return n


@dataclass(frozen=True)
class DecoderDims:
    """Dimensions of the Qwen3 text decoder (``thinker_config.text_config``)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab_size: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    #: Size of the aligner's timestamp-classification head; 0 for ASR models.
    classify_num: int = 0


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the special tokens the prompt and the output parser use."""

    endoftext: int
    im_start: int
    im_end: int
    audio_start: int
    audio_end: int
    audio_pad: int
    asr_text: int
    #: Ids that end generation.
    eos: tuple[int, ...]
    #: The aligner's ``<timestamp>`` slot token; ``None`` for ASR models.
    timestamp: int | None = None
    #: Every added token flagged special: dropped from decoded text, as ``skip_special_tokens`` does.
    special: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelFile:
    """One file of the folder."""

    role: Role
    path: str
    precision: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SourceInfo:
    """The checkpoint a folder was converted from."""

    name: str
    model_type: str
    #: Weight file name -> sha256 of its bytes.
    files: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    """Everything ``manifest.json`` says."""

    kind: Kind
    converter_version: str
    source: SourceInfo
    encoder: EncoderDims
    decoder: DecoderDims
    tokens: SpecialTokens
    languages: tuple[str, ...]
    files: tuple[ModelFile, ...]
    #: Milliseconds per timestamp class (aligner only).
    timestamp_segment_ms: int | None = None
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def file(self, role: Role) -> ModelFile:
        """The file playing ``role``; raises ModelFolderError if the manifest lists none."""
        for f in self.files:
            if f.role == role:
                return f
        raise ModelFolderError(f"manifest.json lists no {role} file")

    def to_json(self) -> str:
        """Serialise to the JSON text written as ``manifest.json``."""
        data = asdict(self)
        data["tokens"]["eos"] = list(self.tokens.eos)
        data["tokens"]["special"] = list(self.tokens.special)
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Parse a manifest dict; raises ModelFolderError naming the first problem."""
        if data.get("format") != FORMAT_NAME:
            raise ModelFolderError(f"manifest.json is not a {FORMAT_NAME} manifest")
        version = data.get("format_version")
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise ModelFolderError(
                f"manifest.json has format version {version!r}, made by converter "
                f"{data.get('converter_version', '?')}; this qwen-whisper-compat reads versions "
                f"{sorted(SUPPORTED_FORMAT_VERSIONS)}. Upgrade qwen-whisper-compat or re-convert the model."
            )
        try:
            kind = data["kind"]
            if kind not in ("asr", "aligner"):
                raise ModelFolderError(f"manifest.json has unknown kind {kind!r} (expected 'asr' or 'aligner')")
            tokens = dict(data["tokens"])
            tokens["eos"] = tuple(tokens["eos"])
            tokens["special"] = tuple(tokens.get("special", ()))
            return cls(
                kind=kind,
                converter_version=str(data["converter_version"]),
                source=SourceInfo(**data["source"]),
                encoder=EncoderDims(**data["encoder"]),
                decoder=DecoderDims(**data["decoder"]),
                tokens=SpecialTokens(**tokens),
                languages=tuple(data["languages"]),
                files=tuple(ModelFile(**f) for f in data["files"]),
                timestamp_segment_ms=data.get("timestamp_segment_ms"),
                format=data["format"],
                format_version=version,
                extra=dict(data.get("extra", {})),
            )
        except (KeyError, TypeError) as e:
            raise ModelFolderError(f"manifest.json is malformed ({type(e).__name__}: {e})") from e
