"""The request, answer and event shapes of OpenAI's Responses API (``POST /v1/responses``), as far as captioner
speaks it.

As with :mod:`captioner.web.openai.schemas`, these pydantic classes are the one description of the protocol:
the route validates requests with them, builds its answers and its stream events from them, and the OpenAPI
document is generated from them. The answer follows ``openai.types.responses.Response`` field for field, so
the ``openai`` package parses it (``response.output_text``) and PhotoPrism's OpenAI engine reads its text.
Fields the API has but a captioner has no use for (``tools``, ``store``, ``previous_response_id``, ...) are
accepted and ignored, or echoed back where the answer carries them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from captioner.web.composed import WordingFields
from captioner.web.openai.schemas import Lenient


class InputText(Lenient):
    type: Literal["input_text"]
    text: str


class InputImage(Lenient):
    type: Literal["input_image"]
    image_url: str | None = Field(None, description="a data: URL (data:image/jpeg;base64,...) or, for hosts the "
                                                    "server allows (CAPTIONER_IMAGE_URL_HOSTS), an http(s) URL")
    file_id: str | None = Field(None, description="not supported: this server keeps no uploaded files; send the "
                                                  "image as image_url")
    detail: Literal["auto", "low", "high"] | None = None


class OutputText(Lenient):
    """An assistant's earlier answer, sent back as context (read and ignored)."""

    type: Literal["output_text"]
    text: str


InputPart = Annotated[Union[InputText, InputImage, OutputText], Field(discriminator="type")]


class InputMessage(Lenient):
    type: Literal["message"] | None = None
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[InputPart]]


class TextFormatText(Lenient):
    type: Literal["text"]


class TextFormatJsonObject(Lenient):
    type: Literal["json_object"]


class TextFormatJsonSchema(Lenient):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64)
    json_schema: dict = Field(alias="schema", description="the JSON schema the answer must validate against")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[Union[TextFormatText, TextFormatJsonObject, TextFormatJsonSchema],
                       Field(discriminator="type")]


class TextConfig(Lenient):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class Reasoning(Lenient):
    """Accepted and ignored: a captioner does no reasoning (the answer's usage counts 0 reasoning tokens)."""

    effort: str | None = None
    summary: str | None = None


class ResponseRequest(Lenient, WordingFields):
    """POST /v1/responses. The last image a user message holds is captioned; that message's text is the
    model's prompt where the model takes one. ``instructions``, system and developer messages are read and
    ignored. ``tags_from``, ``template``, ``trigger`` and ``language`` are captioner's own fields, sent beside
    OpenAI's (the openai package's ``extra_body``), as on Chat Completions."""

    model: str = Field(min_length=1, description="a loaded model's name (GET /v1/models)")
    input: Union[str, list[InputMessage]] = Field(description="a string (which holds no image, so it is "
                                                              "refused), or messages with input_text and "
                                                              "input_image parts")
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1, description="most words in the caption; a word counts as a "
                                                                  "token, capped at the server's limit")
    temperature: float | None = Field(None, ge=0, le=2, description="0 or unset: the model's deterministic "
                                                                    "decoding; above 0: sampling")
    top_p: float | None = Field(None, ge=0, le=1, description="nucleus sampling (0 or 1: off)")
    text: TextConfig | None = None
    reasoning: Reasoning | None = None
    service_tier: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    parallel_tool_calls: bool | None = None
    tools: list[dict] | None = Field(None, description="accepted and ignored: a captioner calls no tools")
    stream: bool | None = False


class OutputTextPart(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list = Field(default_factory=list)
    logprobs: list = Field(default_factory=list)


class OutputMessage(BaseModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputTextPart]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int = Field(description="words of text in the request")
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = Field(description="words in the answer")
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens"]


class ResponseObject(BaseModel):
    """The answer of POST /v1/responses, and the ``response`` of its stream's lifecycle events."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: Literal["in_progress", "completed", "incomplete"]
    error: None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputMessage]
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    reasoning: dict = Field(default_factory=lambda: {"effort": None, "summary": None})
    service_tier: str = "default"
    store: bool = False  # this server keeps no responses (there is no GET /v1/responses/{id})
    temperature: float | None = None
    text: dict = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: Literal["auto"] = "auto"
    tools: list = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StreamEvent(BaseModel):
    """One Server-Sent Event of a streamed response: ``event: TYPE`` then ``data: {...}`` with the same type
    and a sequence number counting from 0. The other fields depend on the type, as in the openai package's
    ``ResponseStreamEvent``."""

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int
