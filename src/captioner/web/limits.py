"""Rate limits (Flask-Limiter): per API key, or per client address for requests without a valid key.

``CAPTIONER_RATE_LIMIT`` holds for every page and endpoint but ``/healthz``, ``/readyz`` and static files;
translation also has its own, lower ``CAPTIONER_TRANSLATE_RATE_LIMIT``. Counters live in memory (each
process counts alone) or, with ``CAPTIONER_RATE_LIMIT_STORAGE=redis://...``, in Redis, shared by every
worker and host; if Redis goes away, each process counts in memory until it is back. Over a limit: 429
``rate_limited`` with ``Retry-After`` (seconds) and the ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import logging
import time

from flask import request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import OperationalError

from captioner.web.auth import current_caller
from captioner.web.errors import ApiError, json_error, page_error, wants_json
from captioner.web.settings import WebSettings, rate_limit_off

log = logging.getLogger(__name__)
TRANSLATE_ENDPOINT = "translate.translate_api"


def limit_key() -> str:
    """Whom a request counts against: its API key, else its client address (the real one behind a
    trusted proxy, see CAPTIONER_TRUSTED_PROXIES). Wrong keys count against the address."""
    try:
        caller = current_caller()
    except OperationalError:  # keys cannot be checked now: the address counts (the request gets 503 later)
        caller = None
    if caller is not None and caller.key is not None:
        return f"key:{caller.key.id}"
    return f"address:{request.remote_addr}"


def too_many_requests(error: RateLimitExceeded):
    log.warning("rate limit %s reached by %s on %s %s", error.description, limit_key(), request.method,
                request.path)
    message = (f"too many requests: the limit is {error.description}; "
               "wait as many seconds as the Retry-After header says, then try again")
    if wants_json():
        return json_error(ApiError("rate_limited", message, 429))
    return page_error(429, "Too many requests", message[0].upper() + message[1:] + ".")


def rate_headers(limiter: Limiter, response):
    """X-RateLimit-Limit/-Remaining/-Reset on limited responses, and Retry-After on 429 only (Flask-Limiter's
    own headers would also rewrite the Retry-After of a 503 overloaded)."""
    current = limiter.current_limit
    if current is None:
        return response
    try:
        reset_at, remaining = current.reset_at, current.remaining
    except Exception:  # the counters' storage is away: no headers rather than no answer
        return response
    response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int(reset_at - time.time())))
    return response


def init_limits(app, settings: WebSettings) -> Limiter:
    """Limit every request of ``app`` (call before the access check, so failed attempts count too)."""
    try:
        limiter = Limiter(
            limit_key, app=app, storage_uri=settings.rate_limit_storage, headers_enabled=False,  # see rate_headers
            # one budget per caller across every page and endpoint (not one per endpoint)
            application_limits=[] if rate_limit_off(settings.rate_limit) else [settings.rate_limit],
            in_memory_fallback_enabled=True, key_prefix="captioner", enabled=True)
    except Exception as error:  # a storage URI Flask-Limiter cannot use
        raise ValueError(f"CAPTIONER_RATE_LIMIT_STORAGE {settings.rate_limit_storage!r} cannot be used "
                         f"({error}); use memory:// or redis://HOST:6379/0") from None
    for blueprint in ("ops",):  # health checks stay open to load balancers
        limiter.exempt(app.blueprints[blueprint])
    if not rate_limit_off(settings.translate_rate_limit) and TRANSLATE_ENDPOINT in app.view_functions:
        view = app.view_functions[TRANSLATE_ENDPOINT]
        app.view_functions[TRANSLATE_ENDPOINT] = limiter.limit(settings.translate_rate_limit,
                                                               override_defaults=False)(view)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    app.after_request(lambda response: rate_headers(limiter, response))
    app.extensions["captioner.limiter"] = limiter
    return limiter
