"""Uploaded images: read from the request into memory, checked by content through the safe loader.

Nothing a client sends is written to disk: :class:`InMemoryRequest` keeps multipart files in memory
(the upload size limit, ``MAX_UPLOAD_MB``, bounds that memory), and the client's file name is only ever
echoed back, cleaned, never used as a path. The file name's extension and the declared content type are
not trusted: the bytes themselves must decode as an image, within the pixel limit.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from flask import Request, current_app, request
from werkzeug.utils import secure_filename

from captioner.errors import ImageError
from captioner.models.base import CAPTION_STYLES, MAX_PROMPT_CHARACTERS, DecodingRequest
from captioner.web.errors import ApiError

IMAGE_FIELD = "image"  # the multipart field that carries the image
LEGACY_FIELDS = ("files",)  # the original page's field name, still accepted
MAX_SIDE = 1024  # uploads are shrunk to this many pixels per side: every model looks at far fewer


class InMemoryRequest(Request):
    """A request whose uploaded files stay in memory instead of spilling to temporary files."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


@dataclass
class Upload:
    data: bytes
    filename: str  # cleaned client file name, or "upload" for a raw body


def read_upload() -> Upload:
    """The image bytes of this request: multipart field ``image``, or a raw body with an image content type."""
    if request.files or request.mimetype.startswith("multipart/"):
        file = request.files.get(IMAGE_FIELD)
        for name in LEGACY_FIELDS:
            file = file or request.files.get(name)
        if file is None:
            sent = ", ".join(repr(name) for name in request.files) or "none"
            raise ApiError("no_image", f"no image in the request: send it in a multipart field named "
                                       f"'{IMAGE_FIELD}' (fields sent: {sent})")
        data = file.read()
        filename = secure_filename(file.filename or "")[:120] or "upload"
    elif request.mimetype.startswith("image/") or request.mimetype == "application/octet-stream":
        data = request.get_data(cache=False)
        filename = "upload"
    else:
        raise ApiError("no_image", "no image in the request: send multipart/form-data with a field named "
                                   f"'{IMAGE_FIELD}', or the raw image bytes with an image/* content type")
    if not data:
        raise ApiError("no_image", "the uploaded image is empty (0 bytes); choose the image file again")
    return Upload(data, filename)


def decode_image(upload: Upload, max_side: int | None = MAX_SIDE):
    """A PIL RGB image from the upload within the app's pixel limit (shrunk to ``max_side`` pixels per side
    unless None), or ApiError bad_image with the loader's clear message. Every endpoint that takes an image
    reads it here."""
    from captioner.data.images import image_from_bytes

    settings = current_app.config["CAPTIONER_SETTINGS"]
    name = "the upload" if upload.filename == "upload" else f"'{upload.filename}'"
    try:
        return image_from_bytes(upload.data, max_pixels=settings.max_pixels, max_side=max_side, name=name)
    except ImageError as error:
        raise ApiError("bad_image", str(error), 400) from None


def whole_number(name: str, low: int, high: int) -> int | None:
    text = request.values.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ApiError("bad_parameter", f"{name} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise ApiError("bad_parameter", f"{name} must be between {low} and {high}, not {value}")
    return value


def real_number(name: str, low: float, high: float, low_included: bool = True) -> float | None:
    text = request.values.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ApiError("bad_parameter", f"{name} must be a number, not {text[:40]!r}") from None
    too_low = value < low if low_included else value <= low
    if not math.isfinite(value) or too_low or value > high:
        low_side = f"from {low:g}" if low_included else f"above {low:g}"
        raise ApiError("bad_parameter", f"{name} must be {low_side} to {high:g}, not {text[:40]}")
    return value


MAX_TEMPERATURE = 100.0  # far past where every word is as likely as any other


def read_decoding() -> DecodingRequest:
    """Decoding options from the query string or form: method, beam, max_length, prompt, style, temperature,
    top_p, seed (DecodingRequest's one rule)."""
    settings = current_app.config["CAPTIONER_SETTINGS"]
    method = request.values.get("method", "").strip().lower() or None
    beam = whole_number("beam", 1, settings.max_beam)
    prompt = request.values.get("prompt", "").strip()
    if len(prompt) > MAX_PROMPT_CHARACTERS:
        raise ApiError("bad_parameter", f"prompt must be at most {MAX_PROMPT_CHARACTERS} characters")
    style = request.values.get("style", "").strip().lower() or None
    if style is not None and style not in CAPTION_STYLES:
        raise ApiError("bad_parameter", f"style must be one of {', '.join(CAPTION_STYLES)}, not {style[:40]!r}")
    sampling = {"temperature": real_number("temperature", 0.0, MAX_TEMPERATURE),
                "top_p": real_number("top_p", 0.0, 1.0, low_included=False),
                "seed": whole_number("seed", -(2**63), 2**64 - 1)}
    try:
        return DecodingRequest(method, beam, whole_number("max_length", 1, settings.max_caption_length),
                               prompt=prompt or None, style=style, **sampling)
    except ValueError as error:
        raise ApiError("bad_parameter", str(error)[:200]) from None


def wants_compare() -> bool:
    value = request.values.get("compare", "").strip().lower()
    if value in ("", "0", "false", "no", "none"):
        return False
    if value in ("all", "1", "true", "yes", "on"):
        return True
    raise ApiError("bad_parameter", f"compare must be 'all' when given, not {value[:40]!r}")


def wants_attention() -> bool:
    """``attention=1``: add each word's attention map to the answer (models that attend; others give none)."""
    value = request.values.get("attention", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ApiError("bad_parameter", f"attention must be 1 or 0 when given, not {value[:40]!r}")


def wants_score() -> str | None:
    """``score=clip``: rate each caption with CLIPScore (a ``clip_score`` field); None when not asked for."""
    from captioner.evaluation.clipscore import SCORES

    value = request.values.get("score", "").strip().lower()
    if value in ("", "none", "0", "off"):
        return None
    if value in SCORES:
        return value
    raise ApiError("bad_parameter", f"score must be one of {', '.join(SCORES)} when given, not {value[:40]!r}")


def read_wording():
    """``tags_from``, ``template``, ``trigger`` and ``language`` from the query string or form (a Wording)."""
    from pydantic import ValidationError

    from captioner.web.composed import WordingFields

    values = {name: request.values.get(name) for name in WordingFields.model_fields if name in request.values}
    try:
        return WordingFields(**values).wording()
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError("bad_parameter", f"{param}: {first['msg']}" if param else first["msg"], 400, param) from None
