"""Access control: API keys for the API, a signed-in session for the pages (``CAPTIONER_REQUIRE_KEYS``).

With access control off (the default, for a local install) every request is the local user, who sees the
whole history. With it on, every page and endpoint but ``/healthz``, ``/readyz``, the static files and
``/sign-in`` needs a key: the API takes ``Authorization: Bearer KEY`` (401 ``unauthorized`` without one or
with a wrong or revoked one); the pages sign in with a key at ``/sign-in``, which puts only the key's id
in the signed session cookie (HttpOnly, SameSite=Lax, Secure behind HTTPS), and sign out at ``/sign-out``.
Who is asking is worked out once per request (:func:`current_caller`); the rate limits count per caller.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, has_request_context, redirect, render_template, request,
                   session, url_for)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.exc import OperationalError

from captioner.history.keys import KeyInfo, KeyStore, key_digest
from captioner.web.errors import ApiError, json_error, page_error, wants_json

bp = Blueprint("auth", __name__)
KEYS_EXTENSION = "captioner.keys"
SESSION_KEY_ID = "api_key_id"  # the only thing a signed-in session holds
OPEN_ENDPOINTS = {"ops.healthz", "ops.readyz", "static", "auth.sign_in_page", "auth.sign_in"}
OUTAGE_GRACE_S = 300  # how long a key checked before keeps working while the database is away


@dataclass(frozen=True)
class Caller:
    """Who is asking: a valid API key, or (key None) the local user of a server without access control."""

    key: KeyInfo | None

    @property
    def owner_key_id(self) -> int | None:
        """Owner of the entries this caller saves."""
        return self.key.id if self.key else None

    @property
    def visible_to(self) -> int | None:
        """Whose history this caller sees: None for everything (admin key, or no access control)."""
        return None if self.key is None or self.key.admin else self.key.id


LOCAL_USER = Caller(None)


class RecentKeys:
    """Keys the database confirmed lately, so captioning goes on while the database is briefly away.
    Only consulted when the database cannot be reached; a revoked key stops at once otherwise."""

    def __init__(self, grace_s: float = OUTAGE_GRACE_S):
        self.grace_s = grace_s
        self._seen: dict[str, tuple[KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def remember(self, token: str, info: KeyInfo) -> None:
        with self._lock:
            self._seen[token] = (info, time.monotonic())

    def recall(self, token: str) -> KeyInfo | None:
        with self._lock:
            info, seen = self._seen.get(token, (None, 0.0))
        return info if info is not None and time.monotonic() - seen < self.grace_s else None


def key_store() -> KeyStore:
    return current_app.extensions[KEYS_EXTENSION]


def _checked(token: str, check) -> KeyInfo | None:
    """``check()``'s answer, remembered; while the database is away, a recent answer for ``token``."""
    recent: RecentKeys = current_app.extensions["captioner.recent_keys"]
    try:
        info = check()
    except OperationalError:
        info = recent.recall(token)
        if info is None:
            raise
        return info
    if info is not None:
        recent.remember(token, info)
    return info


def current_caller() -> Caller | None:
    """The caller of this request; None when access control is on and no valid key came with it."""
    if "caller" not in g:
        if not current_app.config["CAPTIONER_SETTINGS"].require_keys:
            g.caller = LOCAL_USER
        else:
            g.caller = _identify()
    return g.caller


def _identify() -> Caller | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        info = _checked("bearer:" + key_digest(token), lambda: key_store().verify(token))
        return Caller(info) if info else None
    key_id = session.get(SESSION_KEY_ID)
    if isinstance(key_id, int):
        info = _checked(f"session:{key_id}", lambda: key_store().active(key_id))
        if info is not None:
            return Caller(info)
        session.pop(SESSION_KEY_ID, None)  # revoked since signing in
    return None


def require_caller():
    """Before every request: let it through, or answer 401 (API) / send the browser to sign in (pages)."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    try:
        if current_caller() is not None:
            return None
    except OperationalError:  # the database is away and this key was not checked lately
        problem = ApiError("keys_unavailable", "API keys cannot be checked right now (the database cannot be "
                                               "reached); try again in a moment", 503)
        return json_error(problem) if wants_json() else page_error(503, "Signing in is unavailable",
                                                                   problem.message[0].upper() + problem.message[1:] + ".")
    if wants_json():
        if request.headers.get("Authorization"):
            message = ("the API key was not accepted (unknown, revoked or malformed); check it, or ask the "
                       "server's admin for a new one")
        else:
            message = "this server needs an API key: send it as the header 'Authorization: Bearer KEY'"
        response = json_error(ApiError("unauthorized", message, 401))
        response.headers["WWW-Authenticate"] = 'Bearer realm="captioner"'
        return response
    return redirect(url_for("auth.sign_in_page", next=request.full_path.rstrip("?")))


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the request came over HTTPS (directly, or as a
    trusted proxy says with X-Forwarded-Proto), as well as when CAPTIONER_SECURE_COOKIES says so."""

    def get_cookie_secure(self, app) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


def init_auth(app, keys: KeyStore) -> None:
    app.extensions[KEYS_EXTENSION] = keys
    app.extensions["captioner.recent_keys"] = RecentKeys()
    app.session_interface = SessionCookies()
    app.register_blueprint(bp)
    app.before_request(require_caller)

    @app.context_processor
    def signed_in() -> dict:
        caller = g.get("caller")
        return {"signed_in_key": caller.key if caller is not None and caller.key is not None else None}


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL someone slipped in to send the user elsewhere."""
    parts = urlsplit(target or "")
    if not target or parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("pages.landing_page")
    return target


@bp.get("/sign-in")
def sign_in_page():
    if not current_app.config["CAPTIONER_SETTINGS"].require_keys:
        return redirect(url_for("pages.landing_page"))
    return render_template("pages/sign-in.html", next=_safe_next(request.args.get("next")), error=None)


@bp.post("/sign-in")
def sign_in():
    target = _safe_next(request.form.get("next"))
    token = request.form.get("key", "").strip()
    info = key_store().verify(token) if token else None
    if info is None:
        return render_template("pages/sign-in.html", next=target,
                               error="That key was not accepted. Check it, or ask the server's admin for one."), 401
    session.clear()
    session[SESSION_KEY_ID] = info.id
    return redirect(target)


@bp.post("/sign-out")
def sign_out():
    session.clear()
    flash("Signed out.")
    return redirect(url_for("auth.sign_in_page"))
