"""OpenAI's Responses API: ``POST /v1/responses``, the call PhotoPrism's OpenAI engine makes and the one the
``openai`` package recommends (``client.responses.create``).

Like the chat route beside it, it is a thin translation: the request is read with
:mod:`captioner.web.openai.responses_schemas`, captioned through :mod:`captioner.web.compat` (the same caption
service, queue, keys and limits as ``POST /api/v1/captions``), and answered in the Responses shape: a
``response`` object whose one output message holds the caption as ``output_text``. With ``stream: true`` the
caption comes as the Responses event sequence over Server-Sent Events, one word per text delta. ``text.format``
asks for a structured (JSON) answer, built by :mod:`captioner.web.structured`. Errors come in OpenAI's shape,
decided by the path in :mod:`captioner.web.errors`.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid

from flask import Blueprint, jsonify

from captioner.web import compat, structured
from captioner.web.errors import ApiError
from captioner.web.headers import never_stored, streamed
from captioner.web.openai.responses_schemas import (IncompleteDetails, InputMessage, OutputMessage, OutputTextPart,
                                                    ResponseObject, ResponseRequest, ResponseUsage, StreamEvent)
from captioner.web.openai.routes import openai_caption

bp = never_stored(Blueprint("openai_responses", __name__, url_prefix="/v1"))


@bp.post("/responses")
def create_response():
    """Caption the last image of ``input``; stream the answer as Server-Sent Events with ``stream: true``."""
    body: ResponseRequest = compat.parse_body(ResponseRequest)
    asked_format = body.text.format if body.text is not None else None
    fmt = structured.parse_format(None if asked_format is None else asked_format.model_dump(by_alias=True),
                                  "text.format")
    text, image = last_user_image(body.input)
    ask = compat.CaptionAsk(model=body.model, image=image, text=text, max_words=body.max_output_tokens,
                            temperature=body.temperature, top_p=body.top_p or None, wording=body.wording())
    answer = openai_caption(ask)
    if fmt is not None:  # a JSON document, whole: the word limit cut the caption inside it, not the document
        answer.texts = [structured.render(fmt, answer.text, answer.keywords, answer.keyword_scores)]
        answer.finish_reasons = ["stop"]
    response = response_object(body, answer)
    if body.stream:
        return streamed(stream_events(response), "text/event-stream")
    return jsonify(response.model_dump())


def last_user_image(messages: str | list[InputMessage]) -> tuple[str, object]:
    """The text and image of the last user message that holds an image (earlier turns, instructions and
    system messages are context a captioner cannot use). 400 when no message holds one."""
    if not isinstance(messages, str):
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if message.role != "user" or isinstance(message.content, str):
                continue
            images = [(i, part) for i, part in enumerate(message.content) if part.type == "input_image"]
            if not images:
                continue
            position, part = images[-1]
            param = f"input.{index}.content.{position}"
            if part.image_url is None:
                reason = ("file_id is not supported: this server keeps no uploaded files"
                          if part.file_id is not None else "the image has no image_url")
                raise ApiError("bad_image", f"{param}: {reason}; send the image as \"image_url\": "
                                            "\"data:image/jpeg;base64,...\"", 400, param + ".image_url")
            words = " ".join(p.text for p in message.content if p.type == "input_text")
            return words, compat.image_from_url(part.image_url, param + ".image_url")
    raise ApiError("no_image", "no image in the input: a captioner describes images; send a user message with a "
                               "content part {\"type\": \"input_image\", \"image_url\": "
                               "\"data:image/jpeg;base64,...\"}", 400, "input")


def request_words(body: ResponseRequest) -> int:
    """The words of text in the request (instructions and every message), counted as its input tokens."""
    texts = [body.instructions or ""]
    if isinstance(body.input, str):
        texts.append(body.input)
    else:
        for message in body.input:
            if isinstance(message.content, str):
                texts.append(message.content)
            else:
                texts.extend(part.text for part in message.content if part.type != "input_image")
    return sum(compat.word_count(text) for text in texts)


def response_object(body: ResponseRequest, answer: compat.CaptionAnswer) -> ResponseObject:
    """The completed (or, cut by ``max_output_tokens``, incomplete) response holding the caption."""
    now = int(time.time())
    cut = body.max_output_tokens is not None and answer.finish_reasons[0] == "length"
    status = "incomplete" if cut else "completed"
    message = OutputMessage(id=f"msg_{uuid.uuid4().hex}", status=status,
                            content=[OutputTextPart(text=answer.text)])
    asked, answered = request_words(body), compat.word_count(answer.text)
    echoed = {"instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
              "temperature": body.temperature, "top_p": body.top_p, "user": body.user,
              "metadata": body.metadata or {}, "service_tier": body.service_tier or "default"}
    if body.parallel_tool_calls is not None:
        echoed["parallel_tool_calls"] = body.parallel_tool_calls
    if body.reasoning is not None:
        echoed["reasoning"] = {"effort": body.reasoning.effort, "summary": body.reasoning.summary}
    if body.text is not None and body.text.format is not None:
        echoed["text"] = {"format": body.text.format.model_dump(by_alias=True, exclude_none=True)}
    return ResponseObject(id=f"resp_{uuid.uuid4().hex}", created_at=now, completed_at=now, status=status,
                          incomplete_details=IncompleteDetails(reason="max_output_tokens") if cut else None,
                          model=answer.model, output=[message],
                          usage=ResponseUsage(input_tokens=asked, output_tokens=answered,
                                              total_tokens=asked + answered), **echoed)


def stream_events(done: ResponseObject):
    """The Responses event sequence for a finished answer: the response created and in progress (no output
    yet), the message and its text part added, one text delta per word, the text, part and message done, and
    the response completed (``response.incomplete`` when the word limit cut it)."""
    [message] = done.output
    [part] = message.content
    sequence = itertools.count()

    def event(kind: str, **fields) -> str:
        payload = StreamEvent(type=kind, sequence_number=next(sequence), **fields).model_dump()
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

    started = done.model_copy(update={"status": "in_progress", "output": [], "usage": None,
                                      "completed_at": None, "incomplete_details": None}).model_dump()
    empty_message = message.model_copy(update={"status": "in_progress", "content": []}).model_dump()
    empty_part = OutputTextPart(text="").model_dump()
    where = {"item_id": message.id, "output_index": 0, "content_index": 0}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    yield event("response.output_item.added", output_index=0, item=empty_message)
    yield event("response.content_part.added", part=empty_part, **where)
    for piece in compat.word_pieces(part.text):
        yield event("response.output_text.delta", delta=piece, logprobs=[], **where)
    yield event("response.output_text.done", text=part.text, logprobs=[], **where)
    yield event("response.content_part.done", part=part.model_dump(), **where)
    yield event("response.output_item.done", output_index=0, item=message.model_dump())
    final = "response.incomplete" if done.status == "incomplete" else "response.completed"
    yield event(final, response=done.model_dump())
