"""The native API's request fields and answer shapes (``/api/v1/...``, the health checks, the original's aliases),
as pydantic classes for the OpenAPI document (:mod:`captioner.web.openapi`).

A new request option is one field here, beside the code that reads it (``uploads.read_decoding`` for the
decoding options): add it to :class:`DecodingFields` and every operation that decodes documents it. Answers
allow fields beyond those listed, so adding a field to an answer never breaks a client built from the
document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from captioner.models.base import CAPTION_STYLES, DECODING_METHODS, MAX_PROMPT_CHARACTERS
from captioner.web.composed import WordingFields
from captioner.web.uploads import MAX_TEMPERATURE


class Open(BaseModel):
    """An answer that may carry more fields than listed."""

    model_config = ConfigDict(extra="allow")


# -- requests ------------------------------------------------------------------------------------------
class DecodingFields(BaseModel):
    """How to decode; every field is optional and keeps the model's own setting when left out."""

    method: Literal[DECODING_METHODS] | None = Field(None, description="greedy, beam or sample")
    beam: int | None = Field(None, ge=1, description="beam width (at most CAPTIONER_MAX_BEAM); implies beam search")
    max_length: int | None = Field(None, ge=1, description="most words in the caption")
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARACTERS,
                               description="the model's prompt: a caption start, a task or an instruction")
    style: Literal[CAPTION_STYLES] | None = Field(None, description="what kind of text to write, if the model can")
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE, description="0: the model's deterministic "
                                                                                  "decoding; above 0: sampling")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling")
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1, description="the same seed, the same sampled caption")


class CaptionForm(DecodingFields, WordingFields):
    """POST /api/v1/captions: multipart/form-data (or the raw image bytes with an image/* type and these
    fields in the query string)."""

    image: bytes = Field(description="the image: JPEG, PNG, GIF, WebP, BMP, HEIC or AVIF")
    model: str | None = Field(None, description="a loaded model's name; unset: the default model")
    compare: Literal["all", "1", "0", "true", "false"] | None = Field(None, description="'all': every loaded model")
    attention: Literal["1", "0", "true", "false"] | None = Field(None, description="1: per-word attention maps")
    score: Literal["clip"] | None = Field(None, description="clip: rate each caption with CLIPScore (clip_score)")


class ImageForm(BaseModel):
    """The original project's endpoints: one image in the field ``files`` (or ``image``)."""

    files: bytes = Field(description="the image")


class JobForm(DecodingFields, WordingFields):
    """POST /api/v1/jobs: many images, captioned in the background."""

    images: list[bytes] = Field(description="the images (repeat the field)")
    model: str | None = None


class HistoryForm(BaseModel):
    """POST /api/v1/history: save a caption with a thumbnail of its image."""

    image: bytes
    caption: str
    model: str = ""
    alternatives: str | None = Field(None, description="JSON list of alternatives")
    decoding: str | None = Field(None, description="JSON object of decoding settings")
    translations: str | None = Field(None, description='JSON object {"de": "..."}')


class HistoryQuery(BaseModel):
    q: str | None = Field(None, description="words the caption contains")
    model: str | None = None
    page: int | None = Field(None, ge=1)
    per_page: int | None = Field(None, ge=1)


class ExportQuery(BaseModel):
    format: Literal["csv", "json"] | None = None
    q: str | None = None
    model: str | None = None


class JobQuery(BaseModel):
    format: Literal["csv", "json"] | None = None


class TranslationsUpdate(BaseModel):
    translations: dict[str, str] = Field(min_length=1)


class CaptionEdit(BaseModel):
    caption: str


class TranslateRequest(BaseModel):
    text: str
    to: str = Field(description="a language code from GET /api/v1/translate/languages")


# -- answers -------------------------------------------------------------------------------------------
class Alternative(Open):
    text: str
    log_prob: float


class Timings(Open):
    total_ms: float


class CaptionResult(Open):
    caption: str
    score: float | None
    alternatives: list[Alternative]
    model: str
    kind: str
    dataset: str | None
    decoding: dict[str, Any]
    timings: Timings
    attention: dict[str, Any] | None = None
    clip_score: float | None = Field(None, description="CLIPScore of the caption, 0 to 2.5 (with score=clip)")
    keywords: list[str] = Field(default_factory=list, description="the keywords style's list (a tagger's tags)")
    keyword_scores: list[float] = Field(default_factory=list, description="a tagger's probability of each keyword")
    rating: dict[str, Any] | None = Field(None, description="a tagger's content rating {label, probability}, "
                                                            "apart from the keywords")
    language: dict[str, Any] | None = Field(None, description="with language: {code, how: instructed, translated "
                                                              "or as written, translator}")


class CaptionAnswer(CaptionResult):
    image: dict[str, Any]


class CompareAnswer(Open):
    results: list[dict[str, Any]]
    image: dict[str, Any]
    timings: Timings


class ModelsAnswer(Open):
    status: Literal["loading", "ready", "failed"]
    default_model: str | None
    models: list[dict[str, Any]]
    notes: list[str]
    problems: list[dict[str, Any]]


class Health(Open):
    status: str


class Readiness(Open):
    status: Literal["loading", "ready", "failed"]
    models: dict[str, Any]


class AliasAnswer(Open):
    image: str
    description: str
    model: str


class HistoryEntry(Open):
    id: int
    created_at: str | None
    model: str
    caption: str
    alternatives: list[Any]
    decoding: dict[str, Any]
    translations: dict[str, str]
    thumbnail_url: str


class HistoryPage(Open):
    entries: list[HistoryEntry]
    total: int
    page: int
    per_page: int
    pages: int


class Job(Open):
    id: str
    status: str
    model: str


class JobItem(Open):
    caption: str | None = None
    tags: list[dict[str, Any]] = Field(default_factory=list, description="a tagger's tags as found, each "
                                                                         "{name, probability}")
    rating: dict[str, Any] | None = Field(None, description="a tagger's content rating {label, probability}")


class SavedToHistory(Open):
    saved: int
    ids: list[int]


class Languages(Open):
    backend: str | None
    languages: list[dict[str, str]]


class Translation(Open):
    text: str
    to: str
    backend: str


class ApiErrorDetail(BaseModel):
    code: str = Field(description="stable; see the README's list of error codes")
    message: str


class ApiErrorAnswer(BaseModel):
    error: ApiErrorDetail
