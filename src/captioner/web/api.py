"""The JSON API under ``/api/v1``, and the health checks ``/healthz`` and ``/readyz``.

The API is stateless and uses no cookies: it is exempt from CSRF protection and open to any origin
(CORS), like the original's ``/api/*``. See the README's "Web app and API" section for every field.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from captioner.web.errors import ApiError, from_domain
from captioner.web.headers import never_stored
from captioner.web.service import CaptionService
from captioner.web.uploads import (decode_image, read_decoding, read_upload, read_wording, wants_attention,
                                   wants_compare, wants_score)

bp = never_stored(Blueprint("api", __name__, url_prefix="/api/v1"))
ops = Blueprint("ops", __name__)


def service() -> CaptionService:
    return current_app.extensions["captioner"]


@bp.post("/captions")
def create_caption():
    """Caption one image with one model, or with every loaded model (``compare=all``); ``tags_from``,
    ``template``, ``trigger`` and ``language`` write one model's caption as the command line's options do."""
    started = time.perf_counter()
    upload = read_upload()
    decoding = read_decoding()
    wording = read_wording()
    compare = wants_compare()
    if compare and wording.asked:
        raise ApiError("bad_parameter", "tags_from, template and language apply to one model: leave out compare")
    attention = wants_attention()
    score = wants_score()
    model = requested_model()
    try:
        service().require_ready()
        service().require_score(score)
        image = decode_image(upload)
        image_info = {"filename": upload.filename, "width": image.width, "height": image.height,
                      "bytes": len(upload.data)}
        if compare:
            results = service().compare(image, decoding, attention=attention)
            service().add_scores(image, score, results)
            return jsonify({"results": results, "image": image_info,
                            "timings": {"total_ms": round((time.perf_counter() - started) * 1000, 2)}})
        payload = service().caption(image, model, decoding, attention=attention, wording=wording)
        service().add_scores(image, score, [payload])
    except ApiError:
        raise
    except Exception as error:  # our service errors become stable codes; anything else is logged
        raise from_domain(error) from None
    payload["image"] = image_info
    payload["timings"]["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return jsonify(payload)


def requested_model() -> str | None:
    name = request.values.get("model", "").strip()
    return name or None


@bp.get("/models")
def list_models():
    svc = service()
    return jsonify({"status": svc.state, "default_model": svc.default_model,
                    "models": [m.describe() for m in svc.models.values()],
                    "notes": svc.notes, "problems": svc.problems})


@ops.get("/healthz")
def healthz():
    """Alive: the process answers. Says nothing about models (see /readyz)."""
    return jsonify({"status": "ok"})


@ops.get("/readyz")
def readyz():
    """Ready when models are loaded (in every worker, under gunicorn); includes each model's micro-batching
    counters."""
    data = service().readiness()
    workers = current_app.extensions.get("captioner.workers")  # a WorkerReadiness under gunicorn
    if workers is not None:
        data["workers"] = workers.snapshot()
        if data["status"] == "ready" and data["workers"]["ready"] < workers.expected:
            data["status"] = "loading"
    response = jsonify(data)
    response.status_code = 200 if data["status"] == "ready" else 503
    return response
