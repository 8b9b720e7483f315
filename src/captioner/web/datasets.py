"""The training-set review API behind the ``/dataset`` page: folders under ``CAPTIONER_DATASETS_DIR``, their
images with each caption file's text, thumbnails, saving one caption, edits across the set, and captioning
images with a loaded model into their caption files.

Off (404 with a message saying how to turn it on) unless ``CAPTIONER_DATASETS_DIR`` is set, so that no page
browses the server's disk. Which paths are refused, how saves detect a file changed on disk, and how edits
write: :mod:`captioner.collections.dataset_folder`. Captioning goes through the model service's queues and
writes through the collection run's caption-file writer (:mod:`captioner.collections.caption_files`), so the
folder's ``.captioner/`` state records what captioner wrote, and a person's caption file is kept unless the
request says ``existing``. Keys and rate limits apply as on every route; like the history, the routes take no
cookies' word for a foreign site: a request with another site's Origin is refused.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from captioner.collections import caption_edits
from captioner.collections.dataset_folder import (CaptionConflict, DatasetFolder, DatasetItem, DatasetRoot,
                                                  NotFound, RefusedPath)
from captioner.errors import CaptionerError, DataError
from captioner.web.errors import ApiError, from_domain, json_error
from captioner.web.headers import never_stored
from captioner.web.history import refuse_cross_site
from captioner.web.json_body import json_body

bp = never_stored(Blueprint("datasets_api", __name__, url_prefix="/api/v1/datasets"))
PER_PAGE = 48  # items on one page of a folder
MAX_PER_PAGE = 200
MAX_CAPTION_IMAGES = 8  # images one captioning request captions (the page sends the rest in further requests)
CAPTION_WAIT = 4  # those images may take this many times CAPTIONER_REQUEST_TIMEOUT_S together, as a job's batch
THUMBNAIL_SIDE = 320
OFF_MESSAGE = ("the training-set review page is off: set CAPTIONER_DATASETS_DIR to the folder holding your "
               "training sets and restart the server")


def datasets_root() -> DatasetRoot:
    """The root, or 404 while the page is off."""
    root = current_app.config["CAPTIONER_SETTINGS"].datasets_root
    if root is None:
        raise ApiError("not_found", OFF_MESSAGE, 404)
    try:
        return DatasetRoot(root)
    except DataError as error:
        raise ApiError("not_found", str(error), 404) from None


@bp.before_request
def checks():
    datasets_root()  # off: 404 before anything else is looked at
    refuse_cross_site()


@bp.errorhandler(CaptionerError)
def dataset_error(error: CaptionerError):
    """Our refusals as API errors; a save over a changed file as 409 with both texts."""
    if isinstance(error, CaptionConflict):
        response = jsonify({"error": {"code": "conflict", "message": str(error)},
                            "disk": item_json(error.item, error.folder), "yours": error.text})
        response.status_code = 409
        return response
    if isinstance(error, RefusedPath):
        problem = ApiError("refused_path", str(error), 403)
    elif isinstance(error, NotFound):
        problem = ApiError("not_found", str(error), 404)
    elif isinstance(error, DataError):
        problem = ApiError("bad_request", str(error), 400)
    else:
        problem = from_domain(error)
    return json_error(problem)


def item_json(item: DatasetItem, folder: str) -> dict:
    return {**item.to_dict(), "thumbnail_url": url_for("datasets_api.thumbnail", folder=folder, image=item.image,
                                                       v=item.image_version)}


def body_of(required: tuple[str, ...] = ("folder",)) -> dict:
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError("bad_request", "send a JSON object (Content-Type: application/json)")
    for name in required:
        if name not in body:
            raise ApiError("bad_request", f"the JSON body needs the field {name!r}")
    return body


def text_field(body: dict, name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise ApiError("bad_request", f"{name} must be a string")
    return value


def names_field(body: dict, name: str = "images", required: bool = False) -> list[str] | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError("bad_request", f"{name} must be a list of image file names")
    return value


def open_folder(name) -> DatasetFolder:
    if not isinstance(name, str):
        raise ApiError("bad_request", "folder must be a string: the folder's path inside the training sets folder")
    return datasets_root().folder(name)


def whole(name: str, default: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ApiError("bad_parameter", f"{name} must be a whole number from 1 to {high}")
    return int(raw)


@bp.get("")
def list_folders():
    """The folders with images under the root."""
    root = datasets_root()
    return jsonify({"folders": root.folders(), "extension": root.extension})


@bp.get("/items")
def list_items():
    """One folder's images with their caption files, a page at a time."""
    folder = open_folder(request.args.get("folder", ""))
    page, per_page = whole("page", 1, 1_000_000), whole("per_page", PER_PAGE, MAX_PER_PAGE)
    items = folder.items()
    shown = items[(page - 1) * per_page:page * per_page]
    return jsonify({"folder": folder.name, "items": [item_json(item, folder.name) for item in shown],
                    "total": len(items), "uncaptioned": sum(1 for item in items if item.text is None),
                    "page": page, "per_page": per_page, "pages": max(1, math.ceil(len(items) / per_page))})


@bp.get("/thumbnail")
def thumbnail():
    """A small JPEG of one image, decoded through the safe loader (upright, no metadata)."""
    from captioner.data.images import load_image
    from captioner.history.thumbnails import make_thumbnail

    folder = open_folder(request.args.get("folder", ""))
    path = folder.image(request.args.get("image", ""))
    settings = current_app.config["CAPTIONER_SETTINGS"]
    picture = load_image(path, max_pixels=settings.max_pixels, max_side=THUMBNAIL_SIDE, name=path.name)
    response = Response(make_thumbnail(picture, THUMBNAIL_SIDE), mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=86400"  # the URL names the image's version
    return response


@bp.put("/caption-file")
def save_caption_file():
    """Save one image's caption file; 409 with the text on disk when it changed since it was read."""
    body = body_of(("folder", "image", "text", "version"))
    folder = open_folder(body["folder"])
    item = folder.save(text_field(body, "image"), text_field(body, "text"), text_field(body, "version"))
    return jsonify(item_json(item, folder.name))


@bp.post("/replace")
def find_and_replace():
    """Count (``apply`` false) or make a replacement across the folder's caption files."""
    body = body_of(("folder", "find"))
    folder = open_folder(body["folder"])
    find, replacement = text_field(body, "find") or "", text_field(body, "replace", "") or ""
    try:
        change = caption_edits.replace_text(find, replacement)
    except ValueError as error:
        raise ApiError("bad_request", str(error)) from None
    apply = body.get("apply", False)
    if not isinstance(apply, bool):
        raise ApiError("bad_request", "apply must be true or false")
    names = names_field(body)
    chosen = folder.items() if names is None else [folder.item(name) for name in dict.fromkeys(names)]
    occurrences = sum(caption_edits.count_text(item.text or "", find) for item in chosen if not item.shared)
    changed = folder.edit(change, names, apply=apply)
    return jsonify({"changed": len(changed), "occurrences": occurrences, "applied": apply,
                    "items": [item_json(item, folder.name) for item in changed]})


@bp.post("/tags")
def edit_tags():
    """Add a tag to, or remove one from, the selected images' caption files."""
    body = body_of(("folder", "images"))
    folder = open_folder(body["folder"])
    add, remove = text_field(body, "add"), text_field(body, "remove")
    if bool(add) == bool(remove):
        raise ApiError("bad_request", "say either add or remove: the one tag to add or to take out")
    try:
        change = caption_edits.add_tag(add) if add else caption_edits.remove_tag(remove)
    except ValueError as error:
        raise ApiError("bad_request", str(error)) from None
    changed = folder.edit(change, names_field(body, required=True))
    return jsonify({"changed": len(changed), "items": [item_json(item, folder.name) for item in changed]})


@bp.post("/trigger")
def set_trigger():
    """Put the trigger word first in the caption files (replacing an old trigger word where it stands first)."""
    body = body_of(("folder", "trigger"))
    folder = open_folder(body["folder"])
    try:
        change = caption_edits.set_trigger(text_field(body, "trigger") or "", text_field(body, "old") or "")
    except ValueError as error:
        raise ApiError("bad_request", str(error)) from None
    changed = folder.edit(change, names_field(body))
    return jsonify({"changed": len(changed), "items": [item_json(item, folder.name) for item in changed]})


@bp.post("/captions")
def caption_images():
    """Caption images (given, or the next ones without a caption file) with a loaded model, into their
    caption files; a person's caption file is kept unless ``existing`` says otherwise."""
    from captioner.models.base import CAPTION_STYLES, DecodingRequest

    body = body_of(("folder",))
    folder = open_folder(body["folder"])
    style, existing = text_field(body, "style"), text_field(body, "existing", "skip") or "skip"
    if style is not None and style not in CAPTION_STYLES:
        raise ApiError("bad_parameter", f"style must be one of {', '.join(CAPTION_STYLES)}")
    names = names_field(body)
    items = folder.items()
    if names is None:
        names = [item.image for item in items if item.text is None and not item.shared][:MAX_CAPTION_IMAGES]
    if len(names) > MAX_CAPTION_IMAGES:
        raise ApiError("bad_request", f"{len(names)} images in one request; send at most {MAX_CAPTION_IMAGES} "
                                      "(the page sends the rest in further requests)")
    images = [folder.image(name) for name in dict.fromkeys(names)]
    try:
        results = caption_into_files(folder, images, DecodingRequest(style=style),
                                     text_field(body, "model"), existing, text_field(body, "trigger") or "")
    except ValueError as error:
        raise ApiError("bad_request", str(error)) from None
    remaining = sum(1 for item in folder.items() if item.text is None and not item.shared)
    return jsonify({"results": results, "remaining": remaining})


def caption_into_files(folder: DatasetFolder, images: list[Path], decoding, model: str | None, existing: str,
                       trigger: str) -> list[dict]:
    """Caption ``images`` through the model service and write their caption files as a collection run does."""
    from captioner.collections.caption_files import CaptionFileSettings, CaptionFileTargets
    from captioner.collections.local import upright_size
    from captioner.collections.results import ResultRow
    from captioner.data.images import load_image
    from captioner.errors import ImageError
    from captioner.web.uploads import MAX_SIDE

    from captioner.web.service import model_decoding

    service = current_app.extensions["captioner"]
    max_pixels = current_app.config["CAPTIONER_SETTINGS"].max_pixels
    try:  # an unknown model or a style it cannot write: refused before any image is read
        model_decoding(service.model(model).captioner, decoding, loaded=service.captioners())
    except Exception as error:
        raise from_domain(error) from None
    targets = CaptionFileTargets([folder.records_root()], CaptionFileSettings(folder.extension, trigger=trigger,
                                                                              existing=existing))
    targets.find_conflicts(folder.images())
    results, work = [], []
    for image in images:
        if targets.blocked(image):
            results.append({"image": image.name, "action": "failed", "error": "two images share this stem"})
            continue
        try:
            data = image.read_bytes()
            picture = load_image(data, max_pixels=max_pixels, max_side=MAX_SIDE, name=image.name)
        except (OSError, ImageError) as error:
            results.append({"image": image.name, "action": "failed", "error": str(error)})
            continue
        work.append((image, data, picture))
    try:
        timeout = current_app.config["CAPTIONER_SETTINGS"].request_timeout_s * CAPTION_WAIT
        answers = service.caption_all([(picture, decoding) for _, _, picture in work], model, timeout) if work else []
    except Exception as error:  # an unknown model, a refused style, an overloaded queue: one clear answer
        raise from_domain(error) from None
    plans = []
    for (image, data, _), answer in zip(work, answers):
        width, height = upright_size(data)
        row = ResultRow(str(image), hashlib.sha256(data).hexdigest(), width, height, answer["model"],
                        answer["decoding"], answer["caption"], answer["score"], answer["alternatives"],
                        keywords=answer["keywords"])
        plan = targets.plan(row)
        plans.append(plan)
        results.append({"image": image.name, "action": "kept" if plan.decision.value is None and
                        plan.decision.action != "unchanged" else plan.decision.action})
    targets.write(plans)
    for result in results:
        if result["action"] != "failed":
            result["item"] = item_json(folder.item(result["image"]), folder.name)
    return results
