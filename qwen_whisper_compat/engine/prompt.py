"""The Qwen3-ASR prompt, exactly as the official processor renders and tokenises it.

Rendered text (reference/qwen3_asr.md 4.2; the system turn is always present, even empty)::

    <|im_start|>system\\n{context}<|im_end|>\\n<|im_start|>user\\n<|audio_start|>{<|audio_pad|> x N}
    <|audio_end|><|im_end|>\\n<|im_start|>assistant\\n[language {Language}<asr_text>]

The official tokenizer first cuts the text at added tokens and BPE-encodes each piece between them on
its own; building the ids piece by piece with the special ids inserted directly gives the same ids. Text
in ``context`` is always plain text here: a literal ``<|im_end|>`` in it cannot close the system turn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qwen_whisper_compat.engine.manifest import SpecialTokens

#: A Jinja chat template that renders the official prompt (stored in the GGUF for llama.cpp tools).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'audio' -%}{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- elif part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

Tokenize = Callable[[str], Sequence[int]]


#: Embedding rows ``[len(ids), n_embd]`` (float32, a new array) of token ids: the decoder's ``token_embd``.
TokenRows = Callable[[Sequence[int]], np.ndarray]


@dataclass(frozen=True)
class Prompt:
    """Token ids of one prompt and where its audio rows go."""

    ids: list[int]
    #: Index of the first ``<|audio_pad|>`` row.
    audio_offset: int
    n_audio: int

    def embed(self, token_rows: TokenRows, audio: np.ndarray) -> np.ndarray:
        """The prompt as one embedding batch: the token rows of ``ids`` with the audio embeddings
        ``[n_audio, n_embd]`` written over the ``<|audio_pad|>`` rows."""
        if audio.shape[0] != self.n_audio:
            raise ValueError(f"the prompt has {self.n_audio} audio rows, got {audio.shape[0]} embeddings")
        rows = token_rows(self.ids)
        rows[self.audio_offset : self.audio_offset + self.n_audio] = audio
        return rows

    def extended(self, ids: Sequence[int]) -> Prompt:
        """The same prompt with ``ids`` appended."""
        return Prompt([*self.ids, *ids], self.audio_offset, self.n_audio)


def asr_prompt(
    tokens: SpecialTokens,
    tokenize: Tokenize,
    n_audio: int,
    context: str = "",
    language: str | None = None,
) -> Prompt:
    """Build the prompt ids for ``n_audio`` audio embeddings.

    Args:
        tokens: The model's special token ids.
        tokenize: Plain BPE of a text piece (no special-token parsing, no BOS).
        n_audio: Number of audio embeddings.
        context: Free text for the system turn (hot words, background, previous text).
        language: A prompt language name (e.g. ``"English"``) to force; ``None`` lets the model detect it.
    """
    ids: list[int] = [tokens.im_start, *tokenize("system\n" + context), tokens.im_end]
    ids += [*tokenize("\n"), tokens.im_start, *tokenize("user\n"), tokens.audio_start]
    audio_offset = len(ids)
    ids += [tokens.audio_pad] * n_audio
    ids += [tokens.audio_end, tokens.im_end, *tokenize("\n"), tokens.im_start]
    if language:
        ids += [*tokenize(f"assistant\nlanguage {language}"), tokens.asr_text]
    else:
        ids += tokenize("assistant\n")
    return Prompt(ids=ids, audio_offset=audio_offset, n_audio=n_audio)


@dataclass(frozen=True)
class ParsedOutput:
    """What one decode said."""

    #: Detected (or forced) prompt language name; ``""`` when the model said ``language None`` or gave none.
    language: str
    text: str
    #: True when the model declared no speech (``language None``) and produced no text.
    no_speech: bool


def parse_output(raw: str, forced_language: str | None = None) -> ParsedOutput:
    """Parse ``language X<asr_text>text`` as the official ``parse_asr_output`` does (repetitions fixed)."""
    s = fix_repetitions(raw.strip())
    if not s:
        return ParsedOutput("", "", no_speech=False)
    if forced_language:
        return ParsedOutput(forced_language, s, no_speech=False)
    if ASR_TEXT not in s:
        return ParsedOutput("", s.strip(), no_speech=False)
    meta, text = s.split(ASR_TEXT, 1)
    text = text.strip()
    if "language none" in meta.lower():
        return ParsedOutput("", text, no_speech=not text)
    language = ""
    for line in meta.splitlines():
        line = line.strip()
        if line.lower().startswith("language "):
            value = line[len("language ") :].strip()
            language = value[:1].upper() + value[1:].lower() if value else ""
            break
    return ParsedOutput(language, text, no_speech=False)


ASR_TEXT = "<asr_text>"


def fix_repetitions(text: str, threshold: int = 20, max_pattern: int = 20) -> str:
    """The official repetition repair: a character repeated more than ``threshold`` times, or a pattern of
    up to ``max_pattern`` characters repeated at least ``threshold`` times in a row, collapses to one copy.
    """
    text = re.sub(rf"(.)\1{{{threshold},}}", r"\1", text, flags=re.DOTALL)
    out: list[str] = []
    while len(text) >= 2 * threshold:
        found = _first_repeat(text, threshold, max_pattern)
        if found is None:
            break
        i, k = found
        end = i + threshold * k
        while text[end : end + k] == text[i : i + k] and end + k <= len(text):
            end += k
        out.append(text[: i + k])
        text = text[end:]
    out.append(text)
    return "".join(out)


def _first_repeat(s: str, threshold: int, max_pattern: int) -> tuple[int, int] | None:
    n = len(s)
    for i in range(n - 2 * threshold + 1):
        for k in range(1, max_pattern + 1):
            if i + k * threshold > n:
                break
            pattern = s[i : i + k]
            if all(s[i + r * k : i + (r + 1) * k] == pattern for r in range(1, threshold)):
                return i, k
    return None
