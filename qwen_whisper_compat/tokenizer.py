"""Language tables: the twin of ``whisper.tokenizer``'s ``LANGUAGES`` and ``TO_LANGUAGE_CODE`` (20250625).

Clients build their language pickers from these (``sorted(LANGUAGES.keys())``) and normalise user input
through ``TO_LANGUAGE_CODE``, so both match upstream exactly, order included (reference/whisper_compat.md
1.8). ``QWEN_LANGUAGES`` says which of whisper's languages the Qwen3-ASR models can transcribe.

:func:`to_language_code` is the one way from a host's language tag (``"en-US"``, ``"zh_CN"``, ``"fil"``,
``"English"``) to a whisper code; the servers and host adapters all use it.

This module stays cheap to import: no tokenizer or inference runtime is loaded.
"""

from __future__ import annotations

from collections.abc import Collection

from qwen_whisper_compat.engine.languages import LANGUAGE_CODES
from qwen_whisper_compat.errors import UnsupportedOptionError

__all__ = ["LANGUAGES", "QWEN_LANGUAGES", "TAG_ALIASES", "TO_LANGUAGE_CODE", "to_language_code"]

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

#: Language subtags hosts send that are not whisper's code for the language: ISO 639-2/3 codes of the languages
#: the released models transcribe, retired ISO 639-1 codes, Bokmål, and Javanese's ISO code (whisper says ``jw``).
TAG_ALIASES: dict[str, str] = {
    "fil": "tl", "tgl": "tl", "cmn": "zh", "zho": "zh", "chi": "zh", "nb": "no", "nob": "no", "nno": "nn",
    "iw": "he", "in": "id", "ji": "yi", "jv": "jw", "mo": "ro", "eng": "en", "ara": "ar", "deu": "de",
    "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "por": "pt", "ind": "id", "ita": "it", "kor": "ko",
    "rus": "ru", "tha": "th", "vie": "vi", "jpn": "ja", "tur": "tr", "hin": "hi", "msa": "ms", "may": "ms",
    "zsm": "ms", "nld": "nl", "dut": "nl", "swe": "sv", "dan": "da", "fin": "fi", "pol": "pl", "ces": "cs",
    "cze": "cs", "fas": "fa", "per": "fa", "pes": "fa", "ell": "el", "gre": "el", "ron": "ro", "rum": "ro",
    "hun": "hu", "mkd": "mk", "mac": "mk",
}  # fmt: skip

_QWEN_NAMES = {name.lower(): code for code, name in QWEN_LANGUAGES.items()}


def to_language_code(tag: str, supported: Collection[str] | None = None) -> str:
    """The whisper language code of a host's language tag.

    Accepted: a whisper code (``"en"``, ``"yue"``), a BCP 47 / POSIX tag whose region, script and variant
    subtags are ignored (``"en-US"``, ``"pt_BR"``, ``"zh-Hant-TW"``), an extended language subtag
    (``"zh-yue"`` is Cantonese), the ISO 639-2/3 codes of :data:`TAG_ALIASES` (``"fil"``, ``"cmn"``), and any
    name of :data:`TO_LANGUAGE_CODE` or of the Qwen prompt (``"english"``, ``"Filipino"``); case does not
    matter.

    Args:
        tag: The host's language tag.
        supported: The codes the caller can use (a model's ``languages``); ``None``: every whisper language.

    Raises:
        UnsupportedOptionError: The tag names no whisper language, or one outside ``supported``; the message
            lists the codes that work.
    """
    code = _lookup(tag.strip().lower().replace("_", "-")) if isinstance(tag, str) else None
    if code is None:
        known = sorted(supported) if supported is not None else list(LANGUAGES)
        raise UnsupportedOptionError(
            f"unknown language {tag!r}; the languages are {', '.join(known)} (whisper's codes; names such as "
            "'english' and tags such as 'en-US' work too)"
        )
    if supported is not None and code not in supported:
        raise UnsupportedOptionError(
            f"this model does not transcribe the language {tag!r} ({code}, {LANGUAGES[code]}); it transcribes "
            f"{', '.join(sorted(supported))}"
        )
    return code


def _lookup(key: str) -> str | None:
    if key in LANGUAGES:
        return key
    code = TO_LANGUAGE_CODE.get(key) or _QWEN_NAMES.get(key) or TAG_ALIASES.get(key)
    if code is not None or "-" not in key:
        return code
    primary, second = key.split("-")[:2]
    if len(second) == 3 and second.isalpha() and (second in LANGUAGES or second in TAG_ALIASES):
        return _lookup(second)  # an extended language subtag names the language itself: zh-yue, zh-cmn-Hans
    return _lookup(primary) if primary else None
