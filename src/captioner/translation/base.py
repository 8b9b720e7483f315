"""What every translation backend offers, and the error it raises when it cannot translate."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from captioner.errors import CaptionerError

SOURCE_LANGUAGE = "en"  # captions are English
MAX_TEXT = 5000  # longest text accepted for one translation, in characters

# Languages by the codes the API uses (ISO 639-1, as the Azure Translator does). The first five are the
# original project's; a backend offers the ones it can actually serve.
LANGUAGE_NAMES = {
    "ar": "Arabic",
    "it": "Italian",
    "ja": "Japanese",
    "ru": "Russian",
    "de": "German",
    "es": "Spanish",
    "fr": "French",
    "nl": "Dutch",
    "pt": "Portuguese",
    "zh-Hans": "Chinese (Simplified)",
}
ORIGINAL_LANGUAGES = ("ar", "it", "ja", "ru", "de")


class TranslationError(CaptionerError):
    """The translation backend could not translate; the message says why and what to do."""


@runtime_checkable
class Translator(Protocol):
    """Translates English captions into other languages."""

    name: str  # backend name shown to users ("azure", "marian")

    def languages(self) -> dict[str, str]:
        """The languages this backend can translate into: {code: English name}."""
        ...

    def translate(self, text: str, to: str) -> str:
        """``text`` (English) in language ``to``; raises TranslationError when the backend fails."""
        ...


def check_request(text: str, to: str, languages: dict[str, str]) -> str:
    """The stripped text, after checking it and the target language; ValueError says what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text to translate is empty")
    if len(text) > MAX_TEXT:
        raise ValueError(f"the text to translate is too long ({len(text)} characters; at most {MAX_TEXT})")
    if to not in languages:
        offered = ", ".join(f"{code} ({name})" for code, name in languages.items()) or "none"
        raise ValueError(f"cannot translate into {to!r}; languages offered: {offered}")
    return text.strip()
