"""OpenAI-compatible routes: ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /v1/models/{id}``.

Any client of OpenAI's API (the ``openai`` package, Open WebUI, LangChain, PhotoPrism's OpenAI engine) can
caption through this server by pointing its base URL at ``http://host:port/v1``. The routes are thin: they
read the request with :mod:`captioner.web.openai.schemas`, hand it to :mod:`captioner.web.compat` (the
same caption service as the native API) and write OpenAI's answer shapes. Errors come in OpenAI's shape
(see :func:`captioner.web.errors.error_body`), with the status codes its SDK maps to exception classes.
``response_format`` asks for a structured (JSON) answer, built by :mod:`captioner.web.structured`.
"""

from __future__ import annotations

import json
import time
import uuid

from flask import Blueprint, jsonify

from captioner.web import compat, structured
from captioner.web.errors import ApiError
from captioner.web.headers import never_stored, streamed
from captioner.web.openai.schemas import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage,
                                          Choice, ChunkChoice, CompletionMessage, Delta, ModelCard, ModelList, Usage)

bp = never_stored(Blueprint("openai", __name__, url_prefix="/v1"))


@bp.post("/chat/completions")
def chat_completions():
    """Caption the last image of the conversation; stream it as Server-Sent Events with ``stream: true``."""
    body: ChatCompletionRequest = compat.parse_body(ChatCompletionRequest)
    fmt = structured.parse_format(body.response_format, "response_format")
    text, image = last_user_image(body.messages)
    ask = compat.CaptionAsk(model=body.model, image=image, text=text,
                            max_words=body.max_completion_tokens or body.max_tokens, temperature=body.temperature,
                            top_p=body.top_p, seed=body.seed, n=body.n, wording=body.wording())
    answer = openai_caption(ask)
    if fmt is not None:  # the first caption's keywords are the model's; the alternatives' are their nouns
        answer.texts = [structured.render(fmt, caption, answer.keywords if i == 0 else [],
                                          answer.keyword_scores if i == 0 else [])
                        for i, caption in enumerate(answer.texts)]
        answer.finish_reasons = ["stop"] * len(answer.texts)
    asked, answered = compat.word_count(text), sum(compat.word_count(t) for t in answer.texts)
    usage = Usage(prompt_tokens=asked, completion_tokens=answered, total_tokens=asked + answered)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        with_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = stream_chunks(completion_id, created, answer, usage if with_usage else None)
        return streamed(chunks, "text/event-stream")
    choices = [Choice(index=i, message=CompletionMessage(content=text), finish_reason=reason)
               for i, (text, reason) in enumerate(zip(answer.texts, answer.finish_reasons))]
    completion = ChatCompletion(id=completion_id, created=created, model=answer.model, choices=choices, usage=usage)
    return jsonify(completion.model_dump())


def openai_caption(ask: compat.CaptionAsk) -> compat.CaptionAnswer:
    """The caption through the one caption service; an unknown model is OpenAI's ``model_not_found`` on
    ``model``, which its clients show as such."""
    try:
        return compat.caption(ask)
    except ApiError as error:
        if error.code == "unknown_model":
            error.param, error.code = "model", "model_not_found"
        raise


def last_user_image(messages: list[ChatMessage]) -> tuple[str, object]:
    """The text and image of the last user message that holds an image (earlier turns are context a captioner
    cannot use). 400 when no message holds one."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role != "user" or isinstance(message.content, (str, type(None))):
            continue
        images = [(i, part) for i, part in enumerate(message.content) if part.type == "image_url"]
        if not images:
            continue
        position, part = images[-1]
        text = " ".join(p.text for p in message.content if p.type == "text")
        param = f"messages.{index}.content.{position}.image_url.url"
        return text, compat.image_from_url(part.image_url.url, param)
    raise ApiError("no_image", "no image in the conversation: a captioner describes images; send a user message "
                               "with a content part {\"type\": \"image_url\", \"image_url\": {\"url\": "
                               "\"data:image/jpeg;base64,...\"}}", 400, "messages")


def stream_chunks(completion_id: str, created: int, answer: compat.CaptionAnswer, usage: Usage | None):
    """OpenAI's chunk sequence for each choice: the role, then the words, then the finish reason; then the
    usage when asked for; then ``data: [DONE]``."""

    def event(choices: list[ChunkChoice], **extra) -> str:
        chunk = ChatCompletionChunk(id=completion_id, created=created, model=answer.model, choices=choices, **extra)
        return f"data: {json.dumps(chunk.model_dump(exclude_none=False))}\n\n"

    for index, (text, reason) in enumerate(zip(answer.texts, answer.finish_reasons)):
        yield event([ChunkChoice(index=index, delta=Delta(role="assistant", content=""))])
        for piece in compat.word_pieces(text):
            yield event([ChunkChoice(index=index, delta=Delta(content=piece))])
        yield event([ChunkChoice(index=index, delta=Delta(), finish_reason=reason)])
    if usage is not None:
        yield event([], usage=usage)
    yield "data: [DONE]\n\n"


@bp.get("/models")
def list_models():
    cards = [model_card(loaded) for loaded in compat.service().models.values()]
    return jsonify(ModelList(data=cards).model_dump())


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    loaded = compat.service().models.get(model_id)
    if loaded is None:
        raise ApiError("model_not_found", f"the model {model_id!r} does not exist here; see GET /v1/models",
                       404, "model")
    return jsonify(model_card(loaded).model_dump())


def model_card(loaded) -> ModelCard:
    return ModelCard(id=loaded.name, created=created_seconds(loaded.info.created_at))


def created_seconds(created_at: str | None) -> int:
    """A bundle's ISO creation time as Unix seconds (0 when unknown)."""
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
