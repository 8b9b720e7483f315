"""What the OpenAI- and Ollama-compatible routes share: one translation of a chat-style request into a caption.

Both protocols end here, and from here in the same :class:`~captioner.web.service.CaptionService` call as
``POST /api/v1/captions``: the same micro-batching queue, time limit, image loader and decoding contract.
(Keys and rate limits hold for every route of the app before a view runs.) What the protocols differ in,
their field names and their answer shapes, stays in their own modules.

A captioner is not a chat model. Of a conversation it takes the last image the user sent, and the text of
that message as the model's prompt where the model takes free text (BLIP's and GIT's caption start, a
vision-language model's instruction), or a task where the model knows that task (Florence-2's
``<DETAILED_CAPTION>``, ...); other text, earlier turns and system messages are read and ignored.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace

from flask import current_app
from pydantic import BaseModel, ValidationError

from captioner.models.base import MAX_PROMPT_CHARACTERS, DecodingRequest
from captioner.web.composed import Wording
from captioner.web.errors import ApiError, from_domain
from captioner.web.image_urls import ImageUrlPolicy, ImageUrlTooLarge, RefusedUrl, fetch_image_url
from captioner.web.json_body import json_body
from captioner.web.service import CaptionService, UnknownModel
from captioner.web.uploads import Upload, decode_image

LATEST_TAG = ":latest"  # Ollama clients name models "name:tag"


@dataclass(frozen=True)
class CaptionAsk:
    """A chat-style request in captioner's terms."""

    model: str
    image: object  # the PIL image to caption (through the one safe loader)
    text: str = ""  # the user's words beside the image
    max_words: int | None = None  # the protocol's token limit, read as words
    temperature: float | None = None  # 0 or None: the model's deterministic decoding
    top_p: float | None = None
    seed: int | None = None
    n: int = 1  # captions wanted
    wording: Wording = Wording()  # tags_from, template, trigger, language: as the native API's fields


@dataclass
class CaptionAnswer:
    model: str  # the model's name as served
    texts: list[str]  # best first; n of them, or fewer when the search found fewer different ones
    finish_reasons: list[str]  # "length" where the caption reached the word limit, else "stop"
    timings: dict = field(default_factory=dict)  # the first caption's queue_ms, model_ms, total_ms
    keywords: list[str] = field(default_factory=list)  # the first caption's keywords (a tagger's, or the style's)
    keyword_scores: list[float] = field(default_factory=list)  # a tagger's probability of each; else empty

    @property
    def text(self) -> str:
        return self.texts[0]


def service() -> CaptionService:
    return current_app.extensions["captioner"]


def parse_body(schema: type[BaseModel]):
    """The JSON body validated by ``schema``, or a 400 naming the field at fault. A body sent without a JSON
    content type is read as JSON too (``curl -d`` sends a form type); it may be as large as an upload."""
    data = json_body(max_bytes=None, force=True)
    if not isinstance(data, dict):
        raise ApiError("bad_request", "the body must be a JSON object", 400)
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        # Where a field may take several shapes (a string or a list of messages), pydantic reports each shape's
        # error; the one that got deepest into the body is the shape the client meant.
        located = [(body_path(data, found), found) for found in error.errors()]
        path, first = max(located, key=lambda pair: len(pair[0]))
        param = ".".join(path) or None
        raise ApiError("bad_parameter", f"{param}: {first['msg']}" if param else first["msg"], 400, param) from None


def body_path(data, found: dict) -> list[str]:
    """The path in the body of a validation error: pydantic's location without the labels it adds for the
    shapes of a union ("str", "list[InputMessage]", a tag), which name no key or index of the body; a missing
    field keeps its name."""
    path, here, loc = [], data, found["loc"]
    for position, part in enumerate(loc):
        if isinstance(here, dict) and part in here:
            here = here[part]
        elif isinstance(here, list) and isinstance(part, int) and 0 <= part < len(here):
            here = here[part]
        elif not (position == len(loc) - 1 and found["type"] == "missing"):
            continue
        path.append(str(part))
    return path


def served_name(name: str) -> str:
    """A loaded model's name for ``name`` ("vit-gpt2" also as Ollama's "vit-gpt2:latest"); UnknownModel else."""
    models = service().models
    if name in models:
        return name
    if name.endswith(LATEST_TAG) and name[: -len(LATEST_TAG)] in models:
        return name[: -len(LATEST_TAG)]
    service().require_ready()
    raise UnknownModel(f"the model {name!r} does not exist here; loaded models: {', '.join(models)}")


def image_from_base64(text: str, param: str):
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("bad_image", f"{param} is not valid base64", 400, param) from None
    return decode_image(Upload(data, param))


def image_from_url(url: str, param: str):
    """An image from a data: URL, or from an http(s) URL on a host the server allows."""
    if url.startswith("data:"):
        header, comma, payload = url[5:].partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError("bad_image", f"{param} must be a base64 data: URL (data:image/png;base64,...)", 400, param)
        return image_from_base64(payload, param)
    settings = current_app.config["CAPTIONER_SETTINGS"]
    policy = ImageUrlPolicy.from_setting(settings.image_url_hosts, max_bytes=settings.max_upload_bytes,
                                         timeout_s=settings.image_url_timeout_s)
    try:
        data = fetch_image_url(url, policy)
    except ImageUrlTooLarge as error:
        raise ApiError("image_too_large", str(error), 413, param) from None
    except RefusedUrl as error:
        raise ApiError("bad_image_url", str(error), 400, param) from None
    return decode_image(Upload(data, param))


def followed_text(captioner, text: str) -> str | None:
    """The prompt ``captioner`` gets from the user's words: the words as a caption start or an instruction
    (models that take free text), a task the model knows, or None (the model's own prompt) for words it
    cannot follow."""
    option = getattr(captioner, "prompt_option", None)
    text = text.strip()
    if option is None or not text:
        return None
    if option.style == "task":
        return text if text in option.choices else None
    return text[:MAX_PROMPT_CHARACTERS]


def decoding_requests(captioner, ask: CaptionAsk) -> list[DecodingRequest]:
    """One DecodingRequest per model call: a single one (n alternatives from one beam search, or no
    alternatives), or n draws when sampling, with seeds seed, seed + 1, ... so each draw is reproducible."""
    settings = current_app.config["CAPTIONER_SETTINGS"]
    max_length = None if ask.max_words is None else min(ask.max_words, settings.max_caption_length)
    base = DecodingRequest(max_length=max_length, prompt=followed_text(captioner, ask.text))
    sampling = (ask.temperature or 0) > 0 or (ask.temperature is None and ask.top_p is not None and ask.top_p < 1)
    if sampling:
        draw = replace(base, method="sample", temperature=ask.temperature or 1.0, top_p=ask.top_p, seed=ask.seed)
        return [replace(draw, seed=None if ask.seed is None else ask.seed + i) for i in range(ask.n)]
    if ask.n == 1:
        return [replace(base, alternatives=0)]
    default = captioner.default_decoding
    width = max(ask.n, default.beam_size if default.method == "beam" else 1)
    return [replace(base, method="beam", beam_size=min(width, max(settings.max_beam, ask.n)),
                    alternatives=ask.n - 1)]


def caption(ask: CaptionAsk) -> CaptionAnswer:
    """The caption(s) ``ask`` wants, through the one caption service; service errors become API errors."""
    try:
        name = served_name(ask.model)
        captioner = service().model(name).captioner
        requests = decoding_requests(captioner, ask)
        payloads = service().caption_all([(ask.image, decoding) for decoding in requests], name, wording=ask.wording)
    except ApiError:
        raise
    except Exception as error:  # our service errors become the protocol's errors
        raise from_domain(error) from None
    texts, reasons = [], []
    for payload in payloads:
        limit = payload["decoding"]["max_length"]
        for text in [payload["caption"], *(a["text"] for a in payload["alternatives"])]:
            texts.append(text)
            reasons.append("length" if len(text.split()) >= limit else "stop")
    first = payloads[0]
    return CaptionAnswer(name, texts[: ask.n], reasons[: ask.n], first["timings"], first["keywords"],
                         first["keyword_scores"])


def word_pieces(text: str) -> list[str]:
    """The caption cut into the pieces a stream sends: one word each, the space before it included, so that
    joining the pieces gives the text back exactly."""
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words)] if text else []


def word_count(text: str) -> int:
    return len(text.split())
