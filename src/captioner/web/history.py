"""The caption history in the web app: the ``/history`` page, its thumbnails, and the JSON API.

``init_history(app)`` opens the database named by ``DATABASE_URL`` (default: ``captioner.db`` in the
instance folder), runs the migrations, keeps the store in ``app.extensions`` and starts the retention
cleanup when ``CAPTIONER_HISTORY_RETENTION_DAYS`` is set. Each caller sees, exports and deletes only its
own entries (see :mod:`captioner.web.auth`); saving checks the caller's quota.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect, render_template, request,
                   stream_with_context, url_for)

from captioner.history import HistoryStore, default_database_url, make_thumbnail, open_history
from captioner.history.keys import KeyStore
from captioner.history.retention import RetentionCleanup
from captioner.history.store import MAX_PER_PAGE, HistoryQuota, QuotaExceeded, export_csv, export_json
from captioner.web.auth import LOCAL_USER, Caller, current_caller, init_auth
from captioner.web.errors import ApiError
from captioner.web.headers import never_stored
from captioner.web.json_body import json_body
from captioner.web.uploads import decode_image, read_upload

bp = Blueprint("history", __name__)  # the page, its form posts (CSRF-protected) and thumbnails
api = never_stored(Blueprint("history_api", __name__, url_prefix="/api/v1/history"))  # JSON, for scripts and the pages
MAX_ENTRY_ID = 2**63 - 1  # the database's largest id: a bigger number in a URL is "not found", not a crash
EXTENSION = "captioner.history"
PER_PAGE = 12  # entries on one page of /history
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}


def init_history(app, database_url: str | None = None) -> HistoryStore:
    """Open (and migrate) the history database and attach it to ``app``."""
    settings = app.config.get("CAPTIONER_SETTINGS")
    url = database_url or (settings.database_url if settings else "") or default_database_url(app.instance_path)
    store = open_history(url)
    app.extensions[EXTENSION] = store
    init_auth(app, KeyStore(store.session_factory))
    if settings and settings.history_retention_days > 0:
        app.extensions["captioner.retention"] = RetentionCleanup(
            store, settings.history_retention_days, settings.history_cleanup_interval_s).start()
    return store


def caller() -> Caller:
    """Who is asking; access control has already turned away requests without a valid key."""
    return current_caller() or LOCAL_USER


def quota() -> HistoryQuota:
    settings = current_app.config["CAPTIONER_SETTINGS"]
    return HistoryQuota(settings.history_max_entries, int(settings.history_max_mb * 1_000_000))


def history_store() -> HistoryStore:
    store = current_app.extensions.get(EXTENSION)
    if store is None:
        raise RuntimeError("the history is not set up: call init_history(app) in create_app")
    return store


def refuse_cross_site():
    """The API takes no cookies, so CSRF tokens do not apply; but a page on another site must not change
    or read the history through a visitor's browser: requests that carry a foreign Origin are refused.
    Scripts (curl, requests) send no Origin and pass."""
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise ApiError("forbidden", "requests from other sites may not use this endpoint", 403)


api.before_request(refuse_cross_site)


def entry_json(entry) -> dict:
    return {**entry.to_dict(), "thumbnail_url": url_for("history.history_thumbnail", entry_id=entry.id)}


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


# ---- pages ---------------------------------------------------------------------------------------

@bp.get("/history")
def history_page():
    search = request.args.get("q", "").strip()[:200]
    model = request.args.get("model", "").strip()[:200]
    try:
        page = _int_arg("page", 1, 1, 1_000_000)
    except ValueError:
        page = 1
    store = history_store()
    visible_to = caller().visible_to
    listing = store.list(search=search, model=model, page=page, per_page=PER_PAGE, visible_to=visible_to)
    return render_template("pages/history.html", listing=listing, search=search, model=model,
                           models=store.models(visible_to=visible_to))


@bp.post(f"/history/<int(max={MAX_ENTRY_ID}):entry_id>/delete")
def delete_history_entry_page(entry_id: int):
    """The delete button of the page without JavaScript (a form post, CSRF-checked)."""
    if history_store().delete(entry_id, visible_to=caller().visible_to):
        flash("Entry deleted.")
    return redirect(url_for("history.history_page", q=request.form.get("q") or None,
                            model=request.form.get("model") or None))


@bp.get(f"/history/<int(max={MAX_ENTRY_ID}):entry_id>/thumbnail.jpg")
def history_thumbnail(entry_id: int):
    data = history_store().thumbnail(entry_id, visible_to=caller().visible_to)
    if data is None:
        abort(404)
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# ---- API -----------------------------------------------------------------------------------------

@api.get("")
def list_history_api():
    try:
        page = _int_arg("page", 1, 1, 1_000_000)
        per_page = _int_arg("per_page", 20, 1, MAX_PER_PAGE)
    except ValueError as error:
        raise ApiError("bad_parameter", str(error)) from None
    listing = history_store().list(search=request.args.get("q", ""), model=request.args.get("model", ""),
                                   page=page, per_page=per_page, visible_to=caller().visible_to)
    return jsonify({"entries": [entry_json(e) for e in listing.entries], "total": listing.total,
                    "page": listing.page, "per_page": listing.per_page, "pages": listing.pages})


def _json_field(name: str, default):
    raw = request.form.get(name, "")
    if not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError(f"{name} must be JSON") from None


@api.post("")
def save_history_api():
    """Save a caption: multipart form with ``image`` (the captioned image, re-encoded to a thumbnail;
    the upload itself is not kept), ``caption``, ``model``, and optional JSON fields ``alternatives``,
    ``decoding`` and ``translations``."""
    upload = read_upload()
    image = decode_image(upload, max_side=None)  # the app's pixel limit; the thumbnail shrinks it
    try:
        entry = history_store().add(
            model=request.form.get("model", ""), caption=request.form.get("caption", ""),
            thumbnail=make_thumbnail(image), width=image.width, height=image.height,
            alternatives=_json_field("alternatives", []), decoding=_json_field("decoding", {}),
            translations=_json_field("translations", {}),
            file_name=request.files["image"].filename if "image" in request.files else upload.filename,
            owner_key_id=caller().owner_key_id, quota=quota())
    except QuotaExceeded as error:
        raise ApiError("quota_exceeded", str(error), 409) from None
    except ValueError as error:
        raise ApiError("bad_parameter", str(error)) from None
    response = jsonify(entry_json(entry))
    response.status_code = 201
    response.headers["Location"] = url_for("history_api.get_history_api", entry_id=entry.id)
    return response


@api.get(f"/<int(max={MAX_ENTRY_ID}):entry_id>")
def get_history_api(entry_id: int):
    entry = history_store().get(entry_id, visible_to=caller().visible_to)
    if entry is None:
        raise ApiError("not_found", f"no history entry {entry_id}", 404)
    return jsonify(entry_json(entry))


@api.patch(f"/<int(max={MAX_ENTRY_ID}):entry_id>")
def update_history_api(entry_id: int):
    """Add translations to a saved entry: JSON ``{"translations": {"de": "..."}}`` (merged with those it has)."""
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("translations"), dict) or not body["translations"]:
        raise ApiError("bad_parameter", 'send JSON like {"translations": {"de": "ein roter Kreis"}}')
    try:
        entry = history_store().add_translations(entry_id, body["translations"], visible_to=caller().visible_to)
    except ValueError as error:
        raise ApiError("bad_parameter", str(error)) from None
    if entry is None:
        raise ApiError("not_found", f"no history entry {entry_id}", 404)
    return jsonify(entry_json(entry))


@api.delete(f"/<int(max={MAX_ENTRY_ID}):entry_id>")
def delete_history_api(entry_id: int):
    if not history_store().delete(entry_id, visible_to=caller().visible_to):
        raise ApiError("not_found", f"no history entry {entry_id}", 404)
    return "", 204


@api.get("/export")
def export_history_api():
    kind = request.args.get("format", "csv").lower()
    if kind not in EXPORT_TYPES:
        raise ApiError("bad_parameter", "format must be csv or json")
    entries = history_store().iter_entries(search=request.args.get("q", ""), model=request.args.get("model", ""),
                                           visible_to=caller().visible_to)
    chunks = (export_csv if kind == "csv" else export_json)(entries)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    response = Response(stream_with_context(chunks), mimetype=EXPORT_TYPES[kind])
    response.headers["Content-Disposition"] = f'attachment; filename="captioner-history-{stamp}.{kind}"'
    return response
