"""Tags, templates and languages on the API and the pages: ``tags_from``, ``template``, ``trigger`` and ``language``.

The command line's ``--tags-from``, ``--template``, ``--trigger`` and ``--language`` make a captioner out of others
(:func:`captioner.models.tagged.with_tags`, :class:`captioner.translation.captions.CaptionsInLanguage`); a request
here makes the same one, out of the served models seen through their own queues (:class:`Queued`), so a
request that asks for tags waits in the tagger's queue and then in the model's, with everyone else's
requests, under the same limits and the same time limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from captioner.models.base import MAX_PROMPT_CHARACTERS, Caption, Decoding
from captioner.translation.captions import language_of
from captioner.web.batching import BatchedCaption

MAX_TEMPLATE_CHARACTERS = MAX_PROMPT_CHARACTERS
MAX_TRIGGER_CHARACTERS = 100
MAX_NAME_CHARACTERS = 200


class Unfollowable(ValueError):
    """A wording that cannot be followed: an unknown tagger, a bad template, a language nothing can write."""


@dataclass(frozen=True)
class Wording:
    """How a request wants its text written, beside the decoding options; all unset: the model's own caption."""

    tags_from: str | None = None  # a loaded tagger whose tags go into the instruction and fill {tags}
    template: str | None = None  # e.g. "ohwx, {tags}" or "{caption}, {tags}"
    trigger: str = ""  # what {trigger} stands for
    language: str | None = None  # a language code: instructed (VLMs) or translated (other kinds)

    @property
    def asked(self) -> bool:
        return bool(self.tags_from or self.template or self.language)

    def record(self) -> dict:
        """The fields that were given, as a job records them beside its decoding."""
        return {name: value for name, value in self.__dict__.items() if value}

    def __post_init__(self) -> None:
        if self.template is not None and len(self.template) > MAX_TEMPLATE_CHARACTERS:
            raise ValueError(f"template must be at most {MAX_TEMPLATE_CHARACTERS} characters")
        if len(self.trigger) > MAX_TRIGGER_CHARACTERS:
            raise ValueError(f"trigger must be at most {MAX_TRIGGER_CHARACTERS} characters")
        if self.trigger and not self.template:
            raise ValueError("a trigger word goes into a template's {trigger}: give a template too")


class WordingFields(BaseModel):
    """The request fields of a Wording, in every protocol's schema: the native API's form, the OpenAI routes'
    extra body fields (``extra_body`` in the openai package), Ollama's ``options``."""

    tags_from: str | None = Field(None, max_length=MAX_NAME_CHARACTERS,
                                  description="a loaded tagger (kind tagger) whose tags go into a vision-language "
                                              "model's instruction and fill the template's {tags}")
    template: str | None = Field(None, max_length=MAX_TEMPLATE_CHARACTERS,
                                 description="write the caption as this text with {caption}, {tags} and {trigger} "
                                             "filled in, e.g. 'ohwx, {tags}' or '{caption}, {tags}'")
    trigger: str | None = Field(None, max_length=MAX_TRIGGER_CHARACTERS,
                                description="what the template's {trigger} stands for")
    language: str | None = Field(None, max_length=MAX_NAME_CHARACTERS,
                                 description="a language code (e.g. de): vision-language models are instructed in "
                                             "it, other models' English goes through the configured translator")

    @model_validator(mode="after")
    def _follows_the_rules(self):
        try:
            self.wording()
        except ValueError as error:  # said as it is, without pydantic's "Value error, " before it
            raise PydanticCustomError("bad_wording", str(error)) from None
        return self

    def wording(self) -> Wording:
        return Wording(tags_from=(self.tags_from or "").strip() or None, template=self.template or None,
                       trigger=(self.trigger or "").strip(), language=(self.language or "").strip() or None)


class Queued:
    """A served model as a captioner: every ``caption`` call waits in that model's queue, until ``deadline``
    (a ``time.perf_counter()`` value). ``calls`` keeps what each image's turn cost."""

    def __init__(self, loaded, deadline: float):
        inner = loaded.captioner
        self.loaded, self.deadline, self.calls = loaded, deadline, []
        self.name, self.kind, self.info = inner.name, inner.kind, inner.info
        self.default_decoding = inner.default_decoding
        self.styles = getattr(inner, "styles", ("caption",))
        self.prompt_option = getattr(inner, "prompt_option", None)

    def caption(self, images: Sequence, decoding: Decoding | None = None) -> list[Caption]:
        batcher = self.loaded.batcher
        jobs = [batcher.submit(image, decoding) for image in images]
        done = [batcher.wait(job, max(self.deadline - time.perf_counter(), 0.001)) for job in jobs]
        self.calls.extend(done)
        return [result.caption for result in done]

    def tags(self, images: Sequence):
        """A tagger's tags of each image (its keywords, their probabilities and the rating)."""
        from captioner.models.taggers.selection import Tags

        return [Tags(c.keywords, c.keyword_scores, c.rating) for c in self.caption(images)]


def composed(service, loaded, wording: Wording, deadline: float):
    """The captioner ``wording`` asks for, made of ``loaded`` (and the tagger it names) as served, and the queued
    models it calls; ValueError when the wording cannot be followed (said before any image is captioned)."""
    from captioner.models.tagged import with_tags
    from captioner.translation.captions import in_language

    model = Queued(loaded, deadline)
    queued = [model]
    tagger = None
    if wording.tags_from:
        found = service.models.get(wording.tags_from)
        if found is None:
            taggers = [name for name, m in service.models.items() if m.captioner.kind == "tagger"]
            raise ValueError(f"tags_from names no loaded tagger: {wording.tags_from[:80]!r}; loaded taggers: "
                             f"{', '.join(taggers) or 'none (add a WD tagger folder to the models folder)'}")
        tagger = Queued(found, deadline)
        queued.append(tagger)
    # the model's own text in the language; the template's words stay as written
    captioner = with_tags(in_language(model, wording.language, lambda: service.translator), tagger,
                          wording.template, wording.trigger)
    return captioner, queued


def check_wording(service, loaded, wording: Wording) -> None:
    """Unfollowable when ``wording`` cannot be followed with ``loaded`` (before any image is kept or captioned)."""
    try:
        composed(service, loaded, wording, time.perf_counter())
    except ValueError as error:
        raise Unfollowable(str(error)) from None


def caption_composed(service, loaded, image, decoding: Decoding, wording: Wording,
                     timeout: float) -> tuple[BatchedCaption, dict]:
    """One image's caption as ``wording`` asks, and what the answer adds (the language path taken); Unfollowable,
    before any image is captioned, when the wording cannot be followed."""
    try:
        captioner, queued = composed(service, loaded, wording, time.perf_counter() + timeout)
    except ValueError as error:
        raise Unfollowable(str(error)) from None
    (caption,) = captioner.caption([image], decoding)
    calls = [call for model in queued for call in model.calls]
    own = queued[0].calls[-1]
    result = BatchedCaption(caption, round(sum(call.queue_ms for call in calls), 2),
                            round(sum(call.model_ms for call in calls), 2), own.batch_size)
    extra = {"language": language_of(captioner)} if wording.language else {}
    return result, extra
