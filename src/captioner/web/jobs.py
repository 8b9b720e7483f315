"""Asynchronous caption jobs: ``POST /api/v1/jobs`` with many images answers at once with a job id; the
images are captioned in the background (through each model's micro-batching queue, so single requests
still get their turn) and ``GET /api/v1/jobs/ID`` tells the status and the results so far.

Each image has the same limits as a single upload (MAX_UPLOAD_MB, the pixel limit, the formats); one that
fails them gets an error in the results while the others are captioned. Jobs and results live in the
database; the uploads only in this process's memory, so a job whose server stopped is reported failed.
A job belongs to the caller's API key like a history entry: another key gets 404 for it, an admin key sees it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import queue
import threading
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from captioner.collections.local import upright_size
from captioner.history.jobs import JobStore
from captioner.web.errors import ApiError, from_domain
from captioner.web.headers import never_stored
from captioner.web.history import caller
from captioner.web.json_body import json_body
from captioner.web.composed import Unfollowable, Wording, caption_composed, check_wording
from captioner.web.service import model_decoding
from captioner.web.uploads import MAX_SIDE, read_decoding, read_wording

log = logging.getLogger(__name__)

bp = never_stored(Blueprint("jobs_api", __name__, url_prefix="/api/v1/jobs"))
EXTENSION = "caption_jobs"
IMAGES_FIELD = "images"  # the multipart field, repeated once per image ("image" is accepted too)
MAX_JOB_IMAGES = 200  # most images in one job
MAX_JOB_UPLOADS = 20  # a job's request may carry this many times MAX_UPLOAD_MB
CSV_FIELDS = ("index", "file_name", "caption", "score", "edited", "width", "height", "sha256", "error")


@dataclass
class QueuedJob:
    id: str
    model: str
    decoding: object  # the Decoding to use
    images: dict  # position -> upload bytes, in memory only
    wording: Wording = Wording()  # tags from a tagger, a template, a language: as POST /api/v1/captions takes them


class JobRunner:
    """One background thread that captions queued jobs, one after the other."""

    def __init__(self, store: JobStore, service, max_pixels: int):
        self.store, self.service, self.max_pixels = store, service, max_pixels
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="caption-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: QueuedJob) -> None:
        self._queue.put(job)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._run(job)
            except Exception as error:  # noqa: BLE001 - the job says it failed; the thread goes on
                log.exception("caption job %s failed", job.id)
                self.store.set_status(job.id, "failed", f"the job stopped: {from_domain(error).message}")

    def _run(self, job: QueuedJob) -> None:
        from captioner.data.images import image_from_bytes
        from captioner.history.thumbnails import make_thumbnail

        self.store.set_status(job.id, "running")
        loaded = self.service.model(job.model)
        batcher = loaded.batcher
        positions = sorted(job.images)
        for start in range(0, len(positions), batcher.batch_size):
            waiting = []
            for position in positions[start:start + batcher.batch_size]:
                image = image_from_bytes(job.images.pop(position), max_pixels=self.max_pixels, max_side=MAX_SIDE)
                waiting.append((position, image, None if job.wording.asked else batcher.submit(image, job.decoding)))
            for position, image, pending in waiting:
                timeout = self.service.settings.request_timeout_s * 4
                if pending is not None:
                    done = batcher.wait(pending, timeout)
                else:  # tags, a template or a language: each image through the models it needs, in their queues
                    done, _ = caption_composed(self.service, loaded, image, job.decoding, job.wording, timeout)
                caption = done.caption
                self.store.set_result(job.id, position, caption=caption.text, score=caption.score,
                                      alternatives=[{"text": a.text, "log_prob": float(a.log_prob)}
                                                    for a in caption.alternatives],
                                      **tags_of(caption),
                                      thumbnail=make_thumbnail(image))
        self.store.set_status(job.id, "done")


def tags_of(caption) -> dict:
    """A tagger's tags as found, each with its probability, and its rating (an item keeps them apart from its
    caption, which a person may edit); nothing for other models."""
    if not caption.keyword_scores:
        return {}
    tags = [{"name": name, "probability": round(float(p), 4)} for name, p in zip(caption.keywords,
                                                                                 caption.keyword_scores)]
    rating = {"label": caption.rating[0], "probability": round(float(caption.rating[1]), 4)} if caption.rating else None
    return {"tags": tags, "rating": rating}


def init_jobs(app) -> JobStore:
    """The job store over the history database, its orphaned jobs marked failed, and a runner."""
    from captioner.history.db import create_session_factory
    from captioner.web.history import history_store

    with app.app_context():
        store = JobStore(create_session_factory(history_store().engine))
    failed = store.fail_orphans()
    if failed:
        log.warning("%d caption job(s) of a stopped server were marked failed", failed)
    settings = app.config["CAPTIONER_SETTINGS"]
    app.extensions[EXTENSION] = JobRunner(store, app.extensions["captioner"], settings.max_pixels)
    return store


def runner() -> JobRunner:
    return current_app.extensions[EXTENSION]


@bp.post("")
def create_job():
    """Start captioning the images of a multipart request (field ``images``, repeated); 202 with the job."""
    from captioner.data.images import image_from_bytes
    from captioner.errors import ImageError

    settings = current_app.config["CAPTIONER_SETTINGS"]
    request.max_content_length = settings.max_upload_bytes * MAX_JOB_UPLOADS
    uploads = request.files.getlist(IMAGES_FIELD) + request.files.getlist("image")
    if not uploads:
        raise ApiError("no_image", f"no images in the request: send them as multipart fields named '{IMAGES_FIELD}'")
    if len(uploads) > MAX_JOB_IMAGES:
        raise ApiError("too_many_images", f"{len(uploads)} images in one job; send at most {MAX_JOB_IMAGES} per job")
    decoding_request = read_decoding()
    wording = read_wording()
    try:
        loaded = runner().service.model(request.values.get("model", "").strip() or None)
    except Exception as error:
        raise from_domain(error) from None
    try:  # a prompt or style the model refuses is a 400, before any image is kept; so is a wording it cannot follow
        decoding = model_decoding(loaded.captioner, decoding_request, loaded=runner().service.captioners())
        if wording.asked:
            check_wording(runner().service, loaded, wording)
    except Unfollowable as error:
        raise ApiError("bad_parameter", str(error)) from None
    except Exception as error:
        raise from_domain(error) from None
    files, images = [], {}
    for position, upload in enumerate(uploads):
        data = upload.read()
        name = upload.filename or f"image {position + 1}"
        entry = {"file_name": name, "sha256": hashlib.sha256(data).hexdigest() if data else None}
        if len(data) > settings.max_upload_bytes:
            entry["error"] = f"{name} is larger than the {settings.max_upload_mb:g} MB allowed per image"
        else:
            try:
                image_from_bytes(data, max_pixels=settings.max_pixels, max_side=MAX_SIDE, name=f"'{name}'")
                entry["width"], entry["height"] = upright_size(data)
                images[position] = data
            except ImageError as error:
                entry["error"] = str(error)
        files.append(entry)
    store = runner().store
    job_id = store.create(loaded.name, {**decoding.to_dict(), **wording.record()}, files,
                          owner_key_id=caller().owner_key_id)
    if images:
        runner().submit(QueuedJob(job_id, loaded.name, decoding, images, wording))
    else:
        store.set_status(job_id, "done")
    response = jsonify(store.get(job_id))
    response.status_code = 202
    response.headers["Location"] = url_for("jobs_api.get_job", job_id=job_id)
    return response


def job_or_404(job_id: str) -> dict:
    """The job as the API shows it; each item's ``keywords`` list when the job asked for the keywords style
    (its caption holds them, comma-separated, as written or as edited)."""
    from captioner.models.styles import keywords_of

    job = runner().store.get(job_id, visible_to=caller().visible_to)
    if job is None:
        raise ApiError("not_found", f"no job {job_id[:40]!r}; jobs are listed by the id POST /api/v1/jobs returned", 404)
    keywords = (job.get("decoding") or {}).get("style") == "keywords"
    for item in job.get("items", []):
        item["keywords"] = list(keywords_of(item["caption"])) if keywords and item["caption"] else []
    return job


@bp.get("/<job_id>")
def get_job(job_id: str):
    """The job's status and results; ``?format=csv`` or ``?format=json`` downloads the results as a file."""
    job = job_or_404(job_id)
    fmt = request.args.get("format", "").strip().lower()
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for item in job["items"]:
            writer.writerow(item[name] for name in CSV_FIELDS)
        return _download(buffer.getvalue(), f"captions-{job_id[:8]}.csv", "text/csv")
    if fmt == "json":
        return _download(json.dumps(job, ensure_ascii=False, indent=2), f"captions-{job_id[:8]}.json",
                         "application/json")
    if fmt:
        raise ApiError("bad_parameter", f"format must be csv or json, not {fmt[:20]!r}")
    return jsonify(job)


def _download(text: str, filename: str, mimetype: str) -> Response:
    return Response(text, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.patch("/<job_id>/items/<int:index>")
def edit_caption(job_id: str, index: int):
    """Change one image's caption: JSON ``{"caption": "..."}``."""
    job_or_404(job_id)
    body = json_body() or {}
    try:
        item = runner().store.edit_caption(job_id, index, body.get("caption"), visible_to=caller().visible_to)
    except ValueError as error:
        raise ApiError("bad_request", str(error)) from None
    if item is None:
        raise ApiError("not_found", f"job {job_id[:8]} has no captioned image {index}", 404)
    return jsonify(item)


@bp.post("/<job_id>/history")
def save_to_history(job_id: str):
    """Save every captioned image of the job (edited captions as edited) to the history, with thumbnails."""
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise ApiError("forbidden", "requests from other sites may not save to the history", 403)
    from captioner.history.store import QuotaExceeded
    from captioner.web.history import history_store, quota

    job = job_or_404(job_id)
    thumbnails = runner().store.thumbnails(job_id)
    saved = []
    for item in job["items"]:
        if item["caption"] and item["index"] in thumbnails:
            try:
                entry = history_store().add(model=job["model"], caption=item["caption"],
                                            thumbnail=thumbnails[item["index"]], width=item["width"],
                                            height=item["height"], alternatives=item["alternatives"],
                                            decoding=job["decoding"], file_name=item["file_name"],
                                            owner_key_id=caller().owner_key_id, quota=quota())
            except QuotaExceeded as error:
                raise ApiError("quota_exceeded", f"{error} ({len(saved)} saved before that)", 409) from None
            saved.append(entry.id)
    return jsonify({"saved": len(saved), "ids": saved}), 201
