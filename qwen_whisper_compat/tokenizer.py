"""Language tables: the twin of ``whisper.tokenizer``'s ``LANGUAGES`` and ``TO_LANGUAGE_CODE`` (20250625).

Clients build their language pickers from these (``sorted(LANGUAGES.keys())``) and normalise user input
through ``TO_LANGUAGE_CODE``, so both match upstream exactly, order included (reference/whisper_compat.md
1.8). ``QWEN_LANGUAGES`` says which of whisper's languages the Qwen3-ASR models can transcribe.

This module stays cheap to import: no tokenizer or inference runtime is loaded.
"""

from __future__ import annotations

from qwen_whisper_compat.engine.languages import LANGUAGE_CODES

__all__ = ["LANGUAGES", "QWEN_LANGUAGES", "TO_LANGUAGE_CODE"]

#: whisper language code -> lowercase English name, in whisper's language-token order (100 entries).
LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

# Other names whisper accepts for some of the languages above.
_ALIASES: dict[str, str] = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb", "pushto": "ps",
    "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si", "castilian": "es", "mandarin": "zh",
}  # fmt: skip

#: Lowercase English name or alias -> whisper language code: every name of ``LANGUAGES`` (same order),
#: then the aliases.
TO_LANGUAGE_CODE: dict[str, str] = {**{name: code for code, name in LANGUAGES.items()}, **_ALIASES}

_QWEN_NAME_BY_CODE = {code: name for name, code in LANGUAGE_CODES.items()}

#: whisper language code -> the language's name in the Qwen3-ASR prompt, for the languages the released ASR
#: models support, in ``LANGUAGES`` order. Qwen's "Filipino" is whisper's ``tl`` ("tagalog").
QWEN_LANGUAGES: dict[str, str] = {code: _QWEN_NAME_BY_CODE[code] for code in LANGUAGES if code in _QWEN_NAME_BY_CODE}
