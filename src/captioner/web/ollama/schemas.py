"""The request and answer shapes of Ollama's API, as far as captioner speaks it.

Like :mod:`captioner.web.openai.schemas`, these classes validate requests, build answers and generate the
OpenAPI document. ``format`` asks for a structured (JSON) answer (:mod:`captioner.web.structured`) and
``options.stop`` cuts the caption; the fields that concern a chat model (``system``, ``suffix``, ``think``,
``keep_alive``, ``context``, ``raw``, most ``options``) are accepted and change nothing: no thinking is done, so
answers carry no ``thinking``, and a model stays loaded whatever ``keep_alive`` says.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from captioner.web.composed import WordingFields


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class Options(Lenient, WordingFields):
    """Ollama's options, and captioner's own ``tags_from``, ``template``, ``trigger`` and ``language`` among them
    (the ollama package sends a dict of options as it is)."""

    num_predict: int | None = Field(None, description="most words in the caption; -1 or unset: the model's own")
    temperature: float | None = Field(None, ge=0, le=2, description="0 or unset: deterministic; above 0: sampling")
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop: list[str] | None = Field(None, max_length=16, description="the caption ends before the first of these")


JsonFormat = Union[Literal["", "json"], dict[str, Any], None]
FORMAT = Field(None, description='"json" for captioner\'s JSON object (caption, keywords and labels with name, '
                                 'confidence and topicality), or a JSON schema the answer is filled in and '
                                 'validated against')
THINK = Field(None, description="accepted; no thinking is done, so answers carry none")
KEEP_ALIVE = Field(None, description="accepted; served models stay loaded")


class GenerateRequest(Lenient):
    """POST /api/generate: caption the (last) image of ``images``; ``prompt`` is the model's prompt where it
    takes one. Without images and prompt the model is only "loaded" (it already is)."""

    model: str = Field(min_length=1)
    prompt: str = ""
    images: list[str] | None = Field(None, description="base64-encoded images")
    stream: bool = True
    format: JsonFormat = FORMAT
    options: Options | None = None
    system: str | None = Field(None, description="accepted; a captioner follows no system prompt")
    suffix: str | None = Field(None, description="accepted; the answer is never continued with it")
    think: bool | str | None = THINK
    keep_alive: float | str | None = KEEP_ALIVE
    context: list[int] | None = Field(None, description="accepted; each caption stands alone")
    raw: bool | None = None


class Message(Lenient):
    role: str
    content: str = ""
    images: list[str] | None = None


class ChatRequest(Lenient):
    """POST /api/chat: caption the last image the user sent."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(default_factory=list)
    stream: bool = True
    format: JsonFormat = FORMAT
    options: Options | None = None
    think: bool | str | None = THINK
    keep_alive: float | str | None = KEEP_ALIVE


class ShowRequest(Lenient):
    model: str | None = Field(None, min_length=1)
    name: str | None = Field(None, min_length=1, description="the older name of the field `model`")


class Timings(BaseModel):
    """Nanoseconds and counts, as Ollama reports them: integers always (Go clients read them into ints)."""

    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class GenerateAnswer(Timings):
    """One line of the NDJSON stream, or the whole answer with ``stream: false``."""

    model: str
    created_at: str = Field(description="RFC 3339, UTC")
    response: str
    done: bool
    done_reason: Literal["stop", "length", "load"] | None = None


class OllamaAnswerMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatAnswer(Timings):
    model: str
    created_at: str
    message: OllamaAnswerMessage
    done: bool
    done_reason: Literal["stop", "length", "load"] | None = None


class ModelDetails(BaseModel):
    parent_model: str = ""
    format: str
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str


class ModelEntry(BaseModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class TagList(BaseModel):
    models: list[ModelEntry]


class ShowAnswer(BaseModel):
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class Version(BaseModel):
    version: str


class OllamaError(BaseModel):
    error: str
