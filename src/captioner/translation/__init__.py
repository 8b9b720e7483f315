"""Caption translation: the Azure Translator (as in the original project) or local MarianMT models.

``create_translator(TranslationSettings.from_env())`` returns the configured backend, or None when
no backend is available (the web page then offers no translation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from captioner.environment import variables
from captioner.translation.base import (LANGUAGE_NAMES, ORIGINAL_LANGUAGES, TranslationError, Translator,
                                        check_request)

BACKENDS = ("auto", "azure", "marian", "none")


@dataclass
class TranslationSettings:
    """Which translation backend to use and how to reach it."""

    backend: str = "auto"  # "azure", "marian", "none", or "auto": azure when KEY and ENDPOINT are set, else marian when models are installed
    key: str = ""  # KEY: the Azure Translator subscription key
    endpoint: str = ""  # ENDPOINT: the Azure Translator URL, e.g. https://api.cognitive.microsofttranslator.com
    location: str = ""  # LOCATION: the Azure resource's region, e.g. westeurope
    timeout: float = 10.0  # CAPTIONER_TRANSLATION_TIMEOUT: seconds to wait for the Azure service
    languages: str = ",".join(ORIGINAL_LANGUAGES)  # CAPTIONER_TRANSLATION_LANGUAGES: codes the Azure backend offers
    models_dir: str = ""  # CAPTIONER_TRANSLATION_MODELS: folder of opus-mt-en-XX folders (else the HF cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "TranslationSettings":
        env = variables() if environ is None else environ
        def value(name: str, default: str = "") -> str:  # an empty variable (KEY= in .env) means unset
            return (env.get(name) or "").strip() or default

        try:
            timeout = float(value("CAPTIONER_TRANSLATION_TIMEOUT", str(cls.timeout)))
        except ValueError:
            raise ValueError("CAPTIONER_TRANSLATION_TIMEOUT must be a number of seconds") from None
        if timeout <= 0:
            raise ValueError("CAPTIONER_TRANSLATION_TIMEOUT must be a positive number of seconds")
        return cls(backend=value("CAPTIONER_TRANSLATOR", "auto").lower(), key=value("KEY"),
                   endpoint=value("ENDPOINT"), location=value("LOCATION"), timeout=timeout,
                   languages=value("CAPTIONER_TRANSLATION_LANGUAGES", cls.languages),
                   models_dir=value("CAPTIONER_TRANSLATION_MODELS"))


def create_translator(settings: TranslationSettings) -> Translator | None:
    """The backend ``settings`` ask for; None when translation is off or nothing is configured."""
    if settings.backend not in BACKENDS:
        raise ValueError(f"CAPTIONER_TRANSLATOR must be one of {', '.join(BACKENDS)}, not {settings.backend!r}")
    if settings.backend == "none":
        return None
    if settings.backend == "azure" or (settings.backend == "auto" and settings.key and settings.endpoint):
        from captioner.translation.azure import AzureTranslator

        codes = tuple(code.strip() for code in settings.languages.split(",") if code.strip())
        return AzureTranslator(settings.key, settings.endpoint, settings.location, timeout=settings.timeout,
                               languages=codes)
    from captioner.translation.marian import MarianTranslator

    translator = MarianTranslator.from_folder(settings.models_dir or None)
    if translator.languages() or settings.backend == "marian":
        return translator
    return None


__all__ = ["LANGUAGE_NAMES", "TranslationError", "TranslationSettings", "Translator", "check_request",
           "create_translator"]
