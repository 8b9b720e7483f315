"""Caption translation in the web app: ``GET /api/v1/translate/languages`` and ``POST /api/v1/translate``.

``init_translation(app, settings)`` picks the backend (Azure Translator or local MarianMT models, see
:mod:`captioner.translation`); with none configured the page simply offers no translation.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from captioner.translation import TranslationError, TranslationSettings, create_translator
from captioner.web.errors import ApiError
from captioner.web.history import refuse_cross_site
from captioner.web.json_body import json_body

bp = Blueprint("translate", __name__)
EXTENSION = "captioner.translator"


def init_translation(app, settings: TranslationSettings | None = None):
    """Create the configured translator (or None) and attach it to ``app``.

    Without ``settings``: KEY, ENDPOINT and LOCATION come from the app's WebSettings (environment or
    ``.env``), the other translation settings from the environment.
    """
    if settings is None:
        settings = TranslationSettings.from_env()
        web = app.config.get("CAPTIONER_SETTINGS")
        if web is not None:
            settings.key = web.translator_key or settings.key
            settings.endpoint = web.translator_endpoint or settings.endpoint
            settings.location = web.translator_location or settings.location
    translator = create_translator(settings)
    app.extensions[EXTENSION] = translator
    if translator is not None:
        app.logger.info("translation: %s backend, %d languages", translator.name, len(translator.languages()))
    return translator


bp.before_request(refuse_cross_site)


@bp.get("/api/v1/translate/languages")
def translation_languages_api():
    translator = current_app.extensions.get(EXTENSION)
    languages = translator.languages() if translator else {}
    return jsonify({"backend": translator.name if translator else None,
                    "languages": [{"code": code, "name": name} for code, name in languages.items()]})


@bp.post("/api/v1/translate")
def translate_api():
    translator = current_app.extensions.get(EXTENSION)
    if translator is None:
        raise ApiError("translation_unavailable", "translation is not configured on this server: set KEY, "
                         "ENDPOINT and LOCATION for the Azure Translator, or install MarianMT models", 503)
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError("bad_parameter", 'send JSON like {"text": "a dog runs", "to": "de"}')
    text, to = body.get("text"), body.get("to")
    if not isinstance(text, str) or not isinstance(to, str):
        raise ApiError("bad_parameter", '"text" and "to" must both be strings')
    try:
        translated = translator.translate(text, to)
    except TranslationError as error:
        current_app.logger.warning("translation failed: %s", error)
        raise ApiError("translation_failed", str(error), 502) from None
    except ValueError as error:
        raise ApiError("bad_parameter", str(error)) from None
    return jsonify({"text": translated, "to": to, "backend": translator.name})
