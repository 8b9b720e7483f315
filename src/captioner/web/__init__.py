"""The web app: ``create_app(config=None)`` builds the Flask application.

``config`` may be ``None`` (settings from the environment and ``.env``), a
:class:`~captioner.web.settings.WebSettings`, or a dict whose lower-case keys are WebSettings fields and
whose upper-case keys are Flask settings (``{"models_dir": "...", "TESTING": True}``).
Models load when the app is created (once per server worker); see :mod:`captioner.web.service`.
"""

from __future__ import annotations

import logging
from dataclasses import fields

from captioner.web.settings import WebSettings

log = logging.getLogger(__name__)


def settings_from(config) -> tuple[WebSettings, dict]:
    if config is None:
        return WebSettings.from_env(), {}
    if isinstance(config, WebSettings):
        return config.with_secret_key(), dict(config.flask)
    known = {f.name for f in fields(WebSettings)}
    overrides = {k: v for k, v in config.items() if k in known}
    flask_config = {k: v for k, v in config.items() if k not in known}
    settings = WebSettings.from_env(**overrides)
    return settings, {**settings.flask, **flask_config}


def create_app(config=None):
    from flask import Flask
    from flask_cors import CORS
    from flask_wtf.csrf import CSRFProtect

    from captioner.web import (aliases, api, datasets, errors, headers, history, jobs, limits, openapi, outages, pages,
                               reports, translate)
    from captioner.web.mcp import http as mcp_http
    from captioner.web.ollama import routes as ollama_api
    from captioner.web.openai import responses as openai_responses
    from captioner.web.openai import routes as openai_api
    from captioner.web.service import CaptionService
    from captioner.web.uploads import InMemoryRequest

    settings, flask_config = settings_from(config)
    app = Flask(__name__, instance_path=settings.instance_path)
    app.request_class = InMemoryRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=None,  # tokens live as long as the session: a page left open still works
        JSON_SORT_KEYS=False,
        CAPTIONER_SETTINGS=settings,
    )
    app.config.update(flask_config)
    app.json.sort_keys = False

    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # stateless JSON API without cookies; see api.py
    csrf.exempt(api.ops)
    csrf.exempt(aliases.bp)
    csrf.exempt(history.api)  # like the rest of the API; foreign Origins are refused there instead
    csrf.exempt(translate.bp)
    csrf.exempt(jobs.bp)  # stateless like the API; saving to the history refuses foreign Origins
    csrf.exempt(datasets.bp)  # like the history API: foreign Origins are refused there instead
    csrf.exempt(openai_api.bp)  # the compatible protocols: stateless, keys in the Authorization header
    csrf.exempt(openai_responses.bp)
    csrf.exempt(ollama_api.bp)
    # Any site, never with cookies; except the saved history, the (paid) translation service and the training
    # sets on the server's disk.
    CORS(app, resources={r"/api/(?!v1/(history|translate|datasets)).*": {"origins": "*"}, r"/v1/.*": {"origins": "*"}},
         send_wildcard=True)

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(api.ops)
    app.register_blueprint(aliases.bp)
    app.register_blueprint(history.bp)
    app.register_blueprint(history.api)
    app.register_blueprint(translate.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(datasets.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(openai_responses.bp)
    app.register_blueprint(ollama_api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(reports.bp)
    errors.register(app)
    outages.register(app)
    limits.init_limits(app, settings)  # before the key check (in init_history), so wrong keys count too
    history.init_history(app)
    translate.init_translation(app)

    headers.secure(app)

    if settings.trusted_proxies:  # limits and logs see the client's address, not the proxy's
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    service = CaptionService(settings, translator=app.extensions.get(translate.EXTENSION))
    app.extensions["captioner"] = service
    service.start()
    jobs.init_jobs(app)
    csrf.exempt(mcp_http.bp)  # stateless like the API, keys in the Authorization header
    mcp_http.init_mcp(app, service)
    return app
