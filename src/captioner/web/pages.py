"""The pages: landing (``/``), caption (``/caption``), caption many, the training-set review (``/dataset``) and
models (``/models``).

The caption page works with JavaScript (``static/js/caption.js`` calls the JSON API) and without it:
its form posts to ``/caption`` (CSRF-protected) and the answer is the same page with the result.
To add a page, see "To add a new page" in the README.
"""

from __future__ import annotations

import base64
import io

from flask import Blueprint, current_app, render_template, request

from captioner.models.base import CAPTION_STYLES, styles_of
from captioner.web.errors import ApiError, from_domain
from captioner.web.service import CaptionService
from captioner.web.uploads import decode_image, read_decoding, read_upload, read_wording, wants_score

bp = Blueprint("pages", __name__)

COMPARE_ALL = "*"  # the model choice that means "every loaded model, side by side"


def service() -> CaptionService:
    return current_app.extensions["captioner"]


@bp.app_context_processor
def page_context() -> dict:
    svc = current_app.extensions.get("captioner")
    settings = current_app.config["CAPTIONER_SETTINGS"]
    return {
        "service": svc,
        "max_upload_mb": settings.max_upload_mb,
        "max_beam": settings.max_beam,
        "max_caption_length": settings.max_caption_length,
        "compare_all": COMPARE_ALL,
        "caption_styles": CAPTION_STYLES,
        "datasets_on": settings.datasets_root is not None,
        "model_styles": {name: list(styles_of(loaded.captioner)) for name, loaded in svc.models.items()} if svc else {},
        "taggers": [name for name, loaded in svc.models.items() if loaded.captioner.kind == "tagger"] if svc else [],
        "caption_languages": caption_languages(svc),
        "has_translator": bool(svc and svc.translator),
    }


def caption_languages(svc) -> dict[str, str]:
    """The languages a caption can be asked for here: those vision-language models are instructed in (when one
    is loaded) and those the translator offers; code -> name."""
    from captioner.translation.base import LANGUAGE_NAMES
    from captioner.translation.captions import takes_instructions

    if svc is None:
        return {}
    offered = dict(svc.translator.languages()) if svc.translator else {}
    if any(takes_instructions(loaded.captioner) for loaded in svc.models.values()):
        offered.update(LANGUAGE_NAMES)
    return dict(sorted(offered.items(), key=lambda item: item[1]))


@bp.route("/")
def landing_page():
    return render_template("pages/index.html")


@bp.get("/caption")
def caption_page():
    return render_template("pages/caption.html", results=None, error=None, preview=None, chosen={})


@bp.post("/caption")
def caption_form():
    """The caption page without JavaScript: the form posts here, the page comes back with the result."""
    results, error, preview, status = None, None, None, 200
    try:
        upload = read_upload()
        decoding = read_decoding()
        wording = read_wording()
        score = wants_score()
        service().require_score(score)
        image = decode_image(upload)
        model = request.form.get("model", "").strip() or None
        if model == COMPARE_ALL:
            if wording.asked:
                raise ApiError("bad_parameter", "tags from a tagger, a template and a language apply to one model: "
                                                "choose one")
            results = service().compare(image, decoding)
        else:
            results = [service().caption(image, model, decoding, wording=wording)]
        service().add_scores(image, score, results)
        preview = thumbnail_data_url(image)
    except Exception as failure:  # shown on the page as one friendly sentence
        api_error = failure if isinstance(failure, ApiError) else from_domain(failure)
        error, status = api_error.message[0].upper() + api_error.message[1:], api_error.status
    return render_template("pages/caption.html", results=results, error=error, preview=preview,
                           chosen=request.form), status


@bp.route("/caption-many")
def caption_many_page():
    """Many images at once: the page sends them as a job (``/api/v1/jobs``) and shows the results."""
    from captioner.web.jobs import MAX_JOB_IMAGES

    return render_template("pages/caption-many.html", max_job_images=MAX_JOB_IMAGES)


@bp.route("/dataset")
def dataset_page():
    """The training-set review page: thumbnails with their caption files, edited in place (see web/datasets.py);
    off unless CAPTIONER_DATASETS_DIR is set."""
    from captioner.web.datasets import OFF_MESSAGE
    from captioner.web.errors import page_error

    if current_app.config["CAPTIONER_SETTINGS"].datasets_root is None:
        return page_error(404, "The training-set review page is off", OFF_MESSAGE[0].upper() + OFF_MESSAGE[1:] + ".")
    return render_template("pages/dataset.html")


@bp.route("/models")
def models_page():
    from captioner.web.reports import latest

    return render_template("pages/models.html", models=[m.describe() for m in service().models.values()],
                           report=latest())


def thumbnail_data_url(image, side: int = 480) -> str:
    """A small JPEG of the image as a data: URL, so the page can show it without storing anything."""
    small = image.copy()
    small.thumbnail((side, side))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@bp.app_template_filter("filesize")
def filesize(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


@bp.app_template_filter("language_note")
def language_note(language: dict) -> str:
    """What a result says about its language: "Written in de, as instructed" or "Translated into de by azure"."""
    if language.get("how") == "translated":
        return f"Translated into {language['code']} by {language.get('translator', 'the translator')}"
    if language.get("how") == "instructed":
        return f"Written in {language['code']}, as instructed"
    return f"Written in {language['code']}"


@bp.app_template_filter("metric")
def metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
