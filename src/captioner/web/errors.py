"""Errors as the user sees them: JSON with a stable code on the API, a friendly page everywhere else.

API errors look like ``{"error": {"code": "image_too_large", "message": "..."}}``; the codes are stable
and documented in the README, the messages say what was wrong and what to do. The compatible protocols get
the same errors in their own shapes, decided here once by the path, so that access checks, rate limits and
size limits answer every client in the shape its library understands: OpenAI's
``{"error": {"message", "type", "param", "code"}}`` under ``/v1/``, Ollama's ``{"error": "..."}`` on its routes.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from captioner.errors import ImageError, RemoteError
from captioner.translation.base import TranslationError
from captioner.web.batching import Overloaded, RequestTimeout
from captioner.web.service import BadOption, NotReady, ScoreUnavailable, UnknownModel

log = logging.getLogger(__name__)

# HTTP status -> API error code, for errors raised by Flask/Werkzeug themselves.
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "image_too_large",
    415: "no_image",
    429: "overloaded",
    500: "internal",
}

JSON_PREFIXES = ("/api/", "/v1/", "/healthz", "/readyz", "/flickr8k", "/flickr30k", "/VitGpt2ImageCaption")
PAGES_UNDER_API = ("/api/docs",)  # pages among the API's paths: a browser there gets pages, also for errors
OPENAI_PREFIX = "/v1/"
OLLAMA_PATHS = ("/api/generate", "/api/chat", "/api/tags", "/api/show", "/api/version")
# OpenAI's error "type" for each status, as its API names them.
OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
                429: "rate_limit_error"}


class ApiError(Exception):
    """An error the API reports as JSON: a stable ``code``, a message for people, an HTTP status, and (for
    OpenAI's shape) the request field at fault."""

    def __init__(self, code: str, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.param = param


def from_domain(error: Exception) -> ApiError:
    """Our service errors as API errors."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, ImageError):
        return ApiError("bad_image", str(error), 400)
    if isinstance(error, BadOption):
        return ApiError("bad_parameter", str(error), 400)
    if isinstance(error, UnknownModel):
        return ApiError("unknown_model", str(error), 404)
    if isinstance(error, Overloaded):
        return ApiError("overloaded", str(error), 503)
    if isinstance(error, RequestTimeout):
        return ApiError("timeout", str(error), 504)
    if isinstance(error, NotReady):
        return ApiError("not_ready", str(error), 503)
    if isinstance(error, RemoteError):  # a remote model's endpoint: down or busy (503), or answering wrongly (502)
        return (ApiError("remote_unavailable", str(error), 503) if error.unavailable
                else ApiError("remote_failed", str(error), 502))
    if isinstance(error, ScoreUnavailable):
        return ApiError("score_unavailable", str(error), 503)
    if isinstance(error, TranslationError):  # the translator of a caption asked for in a language
        return ApiError("translation_failed", str(error), 502)
    log.error("unexpected %s: %s", type(error).__name__, error, exc_info=error)
    return ApiError("internal", "something went wrong on the server; the error was logged", 500)


def wants_json() -> bool:
    if request.path in PAGES_UNDER_API:
        return False
    return request.path.startswith(JSON_PREFIXES) or request.accept_mimetypes.best == "application/json"


def error_body(error: ApiError) -> dict:
    """The error in the shape of the protocol this request speaks."""
    if request.path.startswith(OPENAI_PREFIX):
        kind = OPENAI_TYPES.get(error.status, "server_error" if error.status >= 500 else "invalid_request_error")
        return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
    if request.path in OLLAMA_PATHS:
        return {"error": error.message}
    return {"error": {"code": error.code, "message": error.message}}


def json_error(error: ApiError):
    response = jsonify(error_body(error))
    response.status_code = error.status
    if error.status == 503:
        response.headers["Retry-After"] = "1"
    return response


def too_large_message() -> str:
    from flask import current_app

    limit = current_app.config["CAPTIONER_SETTINGS"].max_upload_mb
    return f"the upload is larger than the {limit:g} MB limit; send a smaller image (or resize it first)"


def page_error(status: int, title: str, message: str):
    template = "pages/404.html" if status == 404 else "pages/500.html" if status == 500 else "pages/error.html"
    return render_template(template, status=status, title=title, message=message), status


def handle_http(error: HTTPException):
    status = error.code or 500
    if status == 413:
        message = too_large_message()
    elif status == 404 and request.path.startswith("/api/"):
        message = f"there is no API endpoint {request.path}; see GET /api/v1/models and POST /api/v1/captions"
    elif status == 404:
        message = "there is nothing at this address; check the URL"
    elif status == 405:
        message = f"{request.method} is not allowed here"
    else:
        message = error.description or error.name
    if wants_json():
        return json_error(ApiError(HTTP_CODES.get(status, "bad_request"), message, status))
    titles = {404: "Page not found", 413: "That image is too large", 400: "Something was wrong with the request"}
    return page_error(status, titles.get(status, error.name), message[0].upper() + message[1:])


def handle_csrf(error):
    message = "the form expired or came from another site; reload the page and try again"
    if wants_json():
        return json_error(ApiError("bad_request", message, 400))
    return page_error(400, "The form expired", message[0].upper() + message[1:] + ".")


def handle_unexpected(error: Exception):
    if wants_json():
        return json_error(from_domain(error))  # logs what it does not know
    log.exception("unhandled error on %s %s", request.method, request.path)
    return page_error(500, "Something went wrong",
                      "The server could not finish this request. The error was logged; please try again.")


def register(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError

    app.register_error_handler(ApiError, json_error)
    app.register_error_handler(CSRFError, handle_csrf)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)
