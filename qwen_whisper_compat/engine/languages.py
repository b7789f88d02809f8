"""The languages of the released models: their prompt names, whisper codes, and name lookup.

The ASR models take a language by its English name in the prompt (``language English``); the faces speak
whisper codes (``en``). This module owns both tables and the mapping between them; it imports nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

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

#: Prompt language name -> whisper language code.
LANGUAGE_CODES = {
    "Chinese": "zh", "English": "en", "Cantonese": "yue", "Arabic": "ar", "German": "de", "French": "fr",
    "Spanish": "es", "Portuguese": "pt", "Indonesian": "id", "Italian": "it", "Korean": "ko", "Russian": "ru",
    "Thai": "th", "Vietnamese": "vi", "Japanese": "ja", "Turkish": "tr", "Hindi": "hi", "Malay": "ms",
    "Dutch": "nl", "Swedish": "sv", "Danish": "da", "Finnish": "fi", "Polish": "pl", "Czech": "cs",
    "Filipino": "tl", "Persian": "fa", "Greek": "el", "Romanian": "ro", "Hungarian": "hu", "Macedonian": "mk",
}  # fmt: skip
_BY_CODE = {code: name for name, code in LANGUAGE_CODES.items()}
# whisper's own names for the codes above, where they differ from the prompt names
_ALIASES = {"tagalog": "Filipino", "mandarin": "Chinese", "farsi": "Persian"}


def language_name(language: str, supported: Sequence[str] = ASR_LANGUAGES) -> str:
    """The prompt name for a language given as a whisper code (``"en"``) or a name (``"english"``).

    Raises:
        ValueError: The language is not one the model supports; the message lists those it does.
    """
    key = language.strip()
    name = _BY_CODE.get(key.lower()) or _ALIASES.get(key.lower()) or (key[:1].upper() + key[1:].lower())
    if name not in supported:
        listed = ", ".join(f"{n} ({LANGUAGE_CODES.get(n, '?')})" for n in supported)
        raise ValueError(f"unsupported language {language!r}; supported: {listed}")
    return name
