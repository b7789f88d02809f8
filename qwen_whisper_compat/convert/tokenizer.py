"""The checkpoint's Qwen2 byte-level BPE tokenizer, read from its files for the GGUF vocabulary.

Accepts ``vocab.json`` + ``merges.txt`` (the released layout) and/or ``tokenizer.json``; added tokens come
from ``tokenizer_config.json`` (``added_tokens_decoder``) or ``tokenizer.json`` (``added_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from qwen_whisper_compat.engine.modeldir import read_json_object
from qwen_whisper_compat.errors import CheckpointError


@dataclass(frozen=True)
class AddedToken:
    """A token added on top of the BPE vocabulary."""

    id: int
    content: str
    special: bool


@dataclass(frozen=True)
class TokenizerData:
    """What the GGUF needs: one entry per embedding row."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    #: token text -> id, for every real (non-padding) token.
    vocab: dict[str, int]
    #: Ids of the added tokens flagged special (hidden when decoding text).
    special_ids: tuple[int, ...]


def read_tokenizer(folder: Path, vocab_size: int) -> TokenizerData:
    """Read the tokenizer files of a checkpoint and lay them out over ``vocab_size`` embedding rows."""
    bpe, merges = _read_bpe(folder)
    added = _read_added(folder)
    vocab: dict[str, int] = dict(bpe)
    for tok in added:
        vocab[tok.content] = tok.id
    n = max(vocab.values()) + 1
    if n > vocab_size:
        raise CheckpointError(f"the tokenizer has {n} tokens but the embedding only {vocab_size} rows")
    tokens: list[str | None] = [None] * vocab_size
    types = [int(gguf.TokenType.UNUSED)] * vocab_size
    for text, i in bpe.items():
        tokens[i] = text
        types[i] = int(gguf.TokenType.NORMAL)
    for tok in added:
        # as llama.cpp's own converter: "<|...|>"-looking tokens are CONTROL even where the source does not
        # flag them special (llama.cpp would override them at load time anyway). Decoding text does not
        # rely on these types: the manifest lists the source's special ids.
        tokens[tok.id] = tok.content
        control = tok.special or (tok.content.startswith("<|") and tok.content.endswith("|>"))
        types[tok.id] = int(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED)
    holes = [i for i in range(n) if tokens[i] is None]
    if holes:
        raise CheckpointError(f"the tokenizer has no token for id(s) {holes[:5]}; the tokenizer files are incomplete")
    filled = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    special = tuple(t.id for t in added if t.special)
    return TokenizerData(tokens=filled, types=types, merges=merges, vocab=vocab, special_ids=special)


def _read_bpe(folder: Path) -> tuple[dict[str, int], list[str]]:
    vocab_json, merges_txt, tok_json = folder / "vocab.json", folder / "merges.txt", folder / "tokenizer.json"
    if vocab_json.is_file() and merges_txt.is_file():
        vocab = _read(vocab_json)
        lines = merges_txt.read_text(encoding="utf-8").splitlines()
        merges = [ln for ln in lines if ln and not ln.startswith("#version")]
        return {str(k): int(v) for k, v in vocab.items()}, merges
    if tok_json.is_file():
        model = _read(tok_json).get("model") or {}
        if model.get("type") != "BPE":
            raise CheckpointError(f"{tok_json} does not hold a BPE tokenizer")
        raw_merges = model.get("merges") or []
        merges = [m if isinstance(m, str) else " ".join(m) for m in raw_merges]
        return {str(k): int(v) for k, v in (model.get("vocab") or {}).items()}, merges
    raise CheckpointError(
        f"checkpoint {str(folder)!r} has no tokenizer: it needs vocab.json + merges.txt or tokenizer.json"
    )


def _read_added(folder: Path) -> list[AddedToken]:
    found: dict[int, AddedToken] = {}
    tok_json = folder / "tokenizer.json"
    if tok_json.is_file():
        for t in _read(tok_json).get("added_tokens") or []:
            found[int(t["id"])] = AddedToken(int(t["id"]), str(t["content"]), bool(t.get("special", False)))
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        for k, t in (_read(cfg).get("added_tokens_decoder") or {}).items():
            found[int(k)] = AddedToken(int(k), str(t["content"]), bool(t.get("special", False)))
    if not found:
        raise CheckpointError(
            f"checkpoint {str(folder)!r} lists no added tokens (tokenizer_config.json added_tokens_decoder "
            "or tokenizer.json added_tokens); the special tokens cannot be placed"
        )
    return [found[i] for i in sorted(found)]



def _read(path: Path) -> dict[str, Any]:
    return read_json_object(path, CheckpointError)
