"""The request and answer shapes of OpenAI's Chat Completions and Models APIs, as far as captioner speaks them.

These pydantic classes are the one description of the protocol: the routes validate requests with them,
build their answers from them, and the OpenAPI document is generated from them. Fields the OpenAI API has
but a captioner has no use for (``frequency_penalty``, ``tools``, ``user``, ...) are accepted and ignored,
so every standard client works; the fields listed here are the ones that change the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from captioner.web.composed import WordingFields

MAX_CHOICES = 8  # most alternatives one request may ask for (n)


class Lenient(BaseModel):
    """A request part that tolerates the protocol's other fields."""

    model_config = ConfigDict(extra="allow")


class ImageUrl(Lenient):
    url: str = Field(description="a data: URL (data:image/png;base64,...) or, for hosts the server allows "
                                 "(CAPTIONER_IMAGE_URL_HOSTS), an http(s) URL")
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(Lenient):
    type: Literal["text"]
    text: str


class ImagePart(Lenient):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class ChatMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Union[str, list[ContentPart], None] = None
    name: str | None = None


class StreamOptions(Lenient):
    include_usage: bool | None = None


class ChatCompletionRequest(Lenient, WordingFields):
    """POST /v1/chat/completions. The last image sent by the user is captioned; its text is the model's
    prompt where the model takes one. ``tags_from``, ``template``, ``trigger`` and ``language`` are captioner's
    own fields, sent beside OpenAI's (the openai package's ``extra_body``)."""

    model: str = Field(min_length=1, description="a loaded model's name (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    n: int = Field(1, ge=1, le=MAX_CHOICES, description="captions to return: the best and the next best "
                                                        "(or n draws when sampling)")
    max_tokens: int | None = Field(None, ge=1, description="most words in the caption (see max_completion_tokens)")
    max_completion_tokens: int | None = Field(None, ge=1, description="most words in the caption; a word counts "
                                                                      "as a token, capped at the server's limit")
    temperature: float | None = Field(None, ge=0, le=2, description="0 or unset: the model's deterministic "
                                                                    "decoding; above 0: sampling")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="the same seed gives the same sampled caption")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: dict[str, Any] | None = Field(
        None, description='{"type": "text"} (the caption), {"type": "json_object"} (captioner\'s JSON object: '
                          'caption, keywords, and labels with name, confidence and topicality) or {"type": '
                          '"json_schema", "json_schema": {"name": ..., "schema": {...}}} (a document filled from '
                          'the caption and its keywords, validated against the schema)')


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int
    message: CompletionMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = Field(description="words of text in the request")
    completion_tokens: int = Field(description="words in the answer")
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One Server-Sent Event of a streamed answer (``data: {...}``); the stream ends with ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "captioner"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail
