"""Ollama-compatible routes: ``/api/generate``, ``/api/chat``, ``/api/tags``, ``/api/show``, ``/api/version``.

Tools that speak Ollama (the ``ollama`` package, PhotoPrism's Ollama engine, Open WebUI) caption through
this server when pointed at ``http://host:port``. Like the OpenAI routes these only translate: requests
are read with :mod:`captioner.web.ollama.schemas` and captioned through :mod:`captioner.web.compat`.
Answers stream as newline-delimited JSON unless the request says ``"stream": false`` (Ollama's default is
to stream); errors are Ollama's ``{"error": "..."}``. ``format`` ("json" or a JSON schema) makes the answer's
text a JSON document built from the caption and its keywords (:mod:`captioner.web.structured`), the way
PhotoPrism's labels requests want it; ``options.stop`` cuts the caption at the first stop string. Times are
RFC 3339 in UTC and durations integer nanoseconds, as Go clients parse them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from flask import Blueprint, jsonify

from captioner import __version__
from captioner.web import compat, structured
from captioner.web.errors import ApiError, from_domain
from captioner.web.headers import never_stored, streamed
from captioner.web.ollama.schemas import (ChatAnswer, ChatRequest, GenerateAnswer, GenerateRequest, ModelDetails,
                                          ModelEntry, OllamaAnswerMessage, Options, ShowAnswer, ShowRequest, TagList,
                                          Timings, Version)

bp = never_stored(Blueprint("ollama", __name__, url_prefix="/api"))
NANOSECONDS_PER_MS = 1_000_000


@bp.post("/generate")
def generate():
    body: GenerateRequest = compat.parse_body(GenerateRequest)
    if not body.images:
        if body.prompt.strip():
            raise ApiError("no_image", "no image in the request: a captioner describes images; send them in "
                                       "'images' (base64)", 400)
        name = served(body.model)  # Ollama's way to load a model: it is loaded already
        return jsonify(GenerateAnswer(model=name, created_at=now(), response="", done=True,
                                      done_reason="load").model_dump(exclude_none=True))
    fmt = structured.parse_format(body.format, "format")
    image = compat.image_from_base64(body.images[-1], f"images.{len(body.images) - 1}")
    answer = compat.caption(ask(body.model, image, body.prompt, body.options))
    text, reason = answered(answer, fmt, body.options)

    def line(piece: str, done: bool) -> dict:
        extra = timings(answer, text) if done else {}
        return GenerateAnswer(model=answer.model, created_at=now(), response=piece, done=done,
                              done_reason=reason if done else None, **extra).model_dump(exclude_none=True)

    return reply(body.stream, text, line)


@bp.post("/chat")
def chat():
    body: ChatRequest = compat.parse_body(ChatRequest)
    fmt = structured.parse_format(body.format, "format")
    for index in range(len(body.messages) - 1, -1, -1):
        message = body.messages[index]
        if message.role == "user" and message.images:
            position = len(message.images) - 1
            image = compat.image_from_base64(message.images[position], f"messages.{index}.images.{position}")
            text = message.content
            break
    else:
        if not body.messages:
            name = served(body.model)
            return jsonify(ChatAnswer(model=name, created_at=now(), message=OllamaAnswerMessage(content=""), done=True,
                                      done_reason="load").model_dump(exclude_none=True))
        raise ApiError("no_image", "no image in the conversation: a captioner describes images; send a user "
                                   "message with 'images' (base64)", 400)
    answer = compat.caption(ask(body.model, image, text, body.options))
    text, reason = answered(answer, fmt, body.options)

    def line(piece: str, done: bool) -> dict:
        extra = timings(answer, text) if done else {}
        return ChatAnswer(model=answer.model, created_at=now(), message=OllamaAnswerMessage(content=piece), done=done,
                          done_reason=reason if done else None, **extra).model_dump(exclude_none=True)

    return reply(body.stream, text, line)


def ask(model: str, image, text: str, options: Options | None) -> compat.CaptionAsk:
    options = options or Options()
    words = options.num_predict if options.num_predict and options.num_predict > 0 else None
    return compat.CaptionAsk(model=model, image=image, text=text, max_words=words, temperature=options.temperature,
                             top_p=options.top_p, seed=options.seed, wording=options.wording())


def answered(answer: compat.CaptionAnswer, fmt: structured.Format | None, options: Options | None) -> tuple[str, str]:
    """The answer's text (the caption cut at a stop string, or the JSON asked for) and its done_reason."""
    caption, reason = answer.text, answer.finish_reasons[0]
    for stop in (options.stop or []) if options else []:
        if stop and stop in caption:
            caption, reason = caption[: caption.index(stop)], "stop"
    if fmt is None:
        return caption, reason
    return structured.render(fmt, caption, answer.keywords, answer.keyword_scores), "stop"


def reply(stream: bool, text: str, line):
    """The whole answer in one object, or one line per word and a last ``done`` line (NDJSON)."""
    if not stream:
        return jsonify(line(text, True))

    def lines():
        for piece in compat.word_pieces(text):
            yield json.dumps(line(piece, False)) + "\n"
        yield json.dumps(line("", True)) + "\n"

    return streamed(lines(), "application/x-ndjson")


def timings(answer: compat.CaptionAnswer, text: str) -> dict:
    spent = answer.timings
    return Timings(total_duration=int(spent["total_ms"] * NANOSECONDS_PER_MS), load_duration=0,
                   prompt_eval_count=0, eval_count=compat.word_count(text),
                   eval_duration=int(spent["model_ms"] * NANOSECONDS_PER_MS)).model_dump()


def served(name: str) -> str:
    try:
        return compat.served_name(name)
    except Exception as error:  # unknown model, or models still loading
        raise from_domain(error) from None


@bp.get("/tags")
def tags():
    return jsonify(TagList(models=[entry(m) for m in compat.service().models.values()]).model_dump())


@bp.post("/show")
def show():
    body: ShowRequest = compat.parse_body(ShowRequest)
    name = body.model or body.name
    if not name:
        raise ApiError("bad_parameter", "model: the model's name is required", 400)
    loaded = compat.service().models[served(name)]
    info = loaded.info
    return jsonify(ShowAnswer(details=details(loaded), modified_at=modified_at(loaded),
                              capabilities=["completion", "vision"],
                              model_info={"general.architecture": loaded.architecture, "captioner.kind":
                                          loaded.captioner.kind, "captioner.dataset": info.dataset,
                                          "captioner.version": info.version}).model_dump())


@bp.get("/version")
def version():
    return jsonify(Version(version=__version__).model_dump())


def entry(loaded) -> ModelEntry:
    digest = hashlib.sha256(f"{loaded.name}\n{loaded.info.version}\n{loaded.info.created_at}".encode()).hexdigest()
    return ModelEntry(name=f"{loaded.name}{compat.LATEST_TAG}", model=f"{loaded.name}{compat.LATEST_TAG}",
                      modified_at=modified_at(loaded), size=loaded.size_bytes or 0, digest=digest,
                      details=details(loaded))


def details(loaded) -> ModelDetails:
    return ModelDetails(format="safetensors" if loaded.source == "pretrained" else "keras" if loaded.captioner.kind
                        in ("lstm", "attention") else "bundle", family=loaded.architecture,
                        families=[loaded.architecture], parameter_size="", quantization_level="")


def modified_at(loaded) -> str:
    return rfc3339(loaded.info.created_at)


def rfc3339(stamp) -> str:
    """An ISO 8601 time as RFC 3339 in UTC ("2026-05-01T09:30:00Z"; a time without zone read as UTC, an
    unreadable one as the epoch), the form Go's time.RFC3339 parses."""
    try:
        moment = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return "1970-01-01T00:00:00Z"
    moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc).astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
