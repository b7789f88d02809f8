"""The Qwen3-ASR prompt, exactly as the official processor renders and tokenises it.

Rendered text (reference/qwen3_asr.md 4.2; the system turn is always present, even empty)::

    <|im_start|>system\\n{context}<|im_end|>\\n<|im_start|>user\\n<|audio_start|>{<|audio_pad|> x N}
    <|audio_end|><|im_end|>\\n<|im_start|>assistant\\n[language {Language}<asr_text>]

The official tokenizer first cuts the text at added tokens and BPE-encodes each piece between them on
its own; building the ids piece by piece with the special ids inserted directly gives the same ids. Text
in ``context`` is always plain text here: a literal ``<|im_end|>`` in it cannot close the system turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwen_whisper_compat.engine.modeldir import SpecialTokens

#: The 30 languages of the released ASR models, by their prompt names.
ASR_LANGUAGES = (
    "Chinese", "English", "Cantonese", "Arabic", "German", "French", "Spanish", "Portuguese",
    "Indonesian", "Italian", "Korean", "Russian", "Thai", "Vietnamese", "Japanese", "Turkish", "Hindi",
    "Malay", "Dutch", "Swedish", "Danish", "Finnish", "Polish", "Czech", "Filipino", "Persian", "Greek",
    "Romanian", "Hungarian", "Macedonian",
)  # fmt: skip
#: The 11 languages of the released forced aligner.
ALIGNER_LANGUAGES = (
    "Chinese", "English", "Cantonese", "French", "German", "Italian", "Japanese", "Korean", "Portuguese",
    "Russian", "Spanish",
)  # fmt: skip

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


@dataclass(frozen=True)
class Prompt:
    """Token ids of one ASR prompt and where its audio rows go."""

    ids: list[int]
    #: Index of the first ``<|audio_pad|>`` row.
    audio_offset: int
    n_audio: int


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
