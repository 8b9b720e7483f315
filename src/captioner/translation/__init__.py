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
    key: str = ""  # the Azure Translator subscription key
    endpoint: str = ""  # the Azure Translator URL, e.g. https://api.cognitive.microsofttranslator.com
    location: str = ""  # the Azure resource's region, e.g. westeurope
    timeout: float = 10.0  # seconds to wait for the Azure service
    languages: str = ",".join(ORIGINAL_LANGUAGES)  # language codes the Azure backend offers, comma-separated
    models_dir: str = ""  # folder of opus-mt-en-XX model folders (else the Hugging Face cache)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "TranslationSettings":
        env = variables() if environ is None else environ
        defaults = cls()
        values = {}
        for name, variable in VARIABLES.items():  # an empty variable (KEY= in .env) means unset
            values[name] = (env.get(variable) or "").strip() or getattr(defaults, name)
        try:
            values["timeout"] = float(values["timeout"])
        except ValueError:
            raise ValueError("CAPTIONER_TRANSLATION_TIMEOUT must be a number of seconds") from None
        if values["timeout"] <= 0:
            raise ValueError("CAPTIONER_TRANSLATION_TIMEOUT must be a positive number of seconds")
        values["backend"] = values["backend"].lower()
        return cls(**values)


# Environment variable of each TranslationSettings field.
VARIABLES = {"backend": "CAPTIONER_TRANSLATOR", "key": "KEY", "endpoint": "ENDPOINT", "location": "LOCATION",
             "timeout": "CAPTIONER_TRANSLATION_TIMEOUT", "languages": "CAPTIONER_TRANSLATION_LANGUAGES",
             "models_dir": "CAPTIONER_TRANSLATION_MODELS"}


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


__all__ = ["LANGUAGE_NAMES", "TranslationError", "TranslationSettings", "Translator", "VARIABLES",
           "check_request", "create_translator"]
