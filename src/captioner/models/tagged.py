"""Tags and captions together, as training sets combine them.

- :func:`fill_template` is the one line a caption file or a metadata field gets from a ``--template`` such as
  ``ohwx, {tags}`` or ``{caption}, {tags}``: ``{caption}``, ``{tags}`` and ``{trigger}`` filled in, the
  separators around an empty part dropped. The caption command, collection runs and caption files beside a
  training set use it.
- :func:`instruction_with_tags` puts a tagger's tags into a vision-language model's instruction (TagGUI's
  ``{tags}``): in place of ``{tags}`` when the instruction has it, else after it, most probable first, as many
  as the prompt's length limit holds.
- :class:`TaggedCaptioner` is a captioner made of the two: a tagger's tags (``tagger``) given to a model that
  takes instructions and/or written through a template, so every front end that captions uses it unchanged;
  :func:`with_tags` is how every front end (the command line, the API, the pages) makes one.
"""

from __future__ import annotations

import re
import string
from dataclasses import replace
from typing import Sequence

from captioner.models.base import MAX_PROMPT_CHARACTERS, Caption, Decoding

FIELDS = ("caption", "tags", "trigger")
TAGS_FIELD = "{tags}"
_EMPTY_SEPARATORS = re.compile(r"(?:\s*,\s*){2,}")


def template_fields(template: str) -> tuple[str, ...]:
    """The fields a template uses; ValueError for one that is not {caption}, {tags} or {trigger}."""
    try:
        parts = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)
                 if name is not None]
    except ValueError as error:
        raise ValueError(f"the template {template!r} is malformed ({error}); write braces as {{{{ and }}}}") from None
    if any(spec or conversion for _, spec, conversion in parts):
        raise ValueError(f"a template's fields are plain {{caption}}, {{tags}} and {{trigger}}, without a format or "
                         f"conversion ({template!r})")
    named = [name for name, _, _ in parts]
    unknown = [name for name in named if name not in FIELDS]
    if unknown or not named:
        raise ValueError(f"a template uses {', '.join('{' + f + '}' for f in FIELDS)}, not "
                         f"{', '.join('{' + n + '}' for n in unknown) or 'none of them'} ({template!r})")
    return tuple(dict.fromkeys(named))


def fill_template(template: str, caption: str = "", tags: Sequence[str] = (), trigger: str = "",
                  separator: str = ", ") -> str:
    """``template`` with its fields filled in (the tags joined by ``separator``); commas left around an empty
    part are dropped, so ``"{trigger}, {caption}, {tags}"`` without a trigger reads ``"caption, tags"``."""
    template_fields(template)
    caption = caption.strip()
    if not template.rstrip().endswith("{caption}"):  # a sentence's full stop would end the line early
        caption = caption.rstrip(".")
    text = template.format(caption=caption, tags=separator.join(tags), trigger=trigger.strip())
    text = _EMPTY_SEPARATORS.sub(", ", text)
    return " ".join(text.strip(" ,").split())


def instruction_with_tags(instruction: str, tags: Sequence[str], limit: int = MAX_PROMPT_CHARACTERS) -> str:
    """``instruction`` holding as many of ``tags`` (most important first) as ``limit`` characters allow."""
    if TAGS_FIELD in instruction:
        head, tail = instruction.split(TAGS_FIELD, 1)
    else:
        head, tail = instruction.rstrip() + " These tags describe it: ", "."
    chosen: list[str] = []
    for tag in tags:
        if len(head) + len(", ".join([*chosen, tag])) + len(tail) > limit:
            break
        chosen.append(tag)
    return (head + ", ".join(chosen) + tail)[:limit] if chosen else instruction.replace(TAGS_FIELD, "").strip()


class TaggedCaptioner:
    """``captioner`` told ``tagger``'s tags in its instruction (when it takes instructions and ``instruct``), its
    text written through ``template`` (None: the caption as it is). The tags are the result's keywords (with their
    probabilities and the rating) when the caption has none of its own."""

    def __init__(self, captioner, tagger=None, template: str | None = None, trigger: str = "", instruct: bool = True):
        self.inner, self.tagger, self.template, self.trigger = captioner, tagger, template, trigger
        takes = getattr(getattr(captioner, "prompt_option", None), "style", None) == "instruction"
        self.instruct = bool(tagger is not None and instruct and takes)
        fields = template_fields(template) if template else ()
        is_tagger = getattr(captioner, "kind", None) == "tagger"
        if "tags" in fields and tagger is None and not is_tagger:
            raise ValueError("the template uses {tags}: name a tagger to take them from (--tags-from, tags_from), "
                             "or use a tagger as the model")
        if "caption" in fields and is_tagger:
            raise ValueError("the template uses {caption}, but the model is a tagger; caption with another model "
                             "and take the tags from the tagger (--tags-from, tags_from)")
        if tagger is not None and not self.instruct and "tags" not in fields:
            raise ValueError(f"{captioner.name} takes no instruction to put tags into; use a vision-language model "
                             "or a template with {tags}")
        self.name = captioner.name if tagger is None else f"{captioner.name}+{tagger.name}"
        self.kind, self.info = captioner.kind, captioner.info
        self.default_decoding = captioner.default_decoding
        self.styles = getattr(captioner, "styles", ("caption",))
        self.prompt_option = getattr(captioner, "prompt_option", None)

    def run_settings(self) -> dict:
        """The template, trigger and tagger's choices, beside the model's own, as a result row records them."""
        own = {"template": self.template, "trigger": self.trigger}
        if self.tagger is not None:
            own["tags_from"] = {"name": self.tagger.name, **run_settings(self.tagger)}
        return {**run_settings(self.inner), **{name: value for name, value in own.items() if value}}

    def caption(self, images: Sequence, decoding: Decoding | None = None) -> list[Caption]:
        decoding = decoding or self.default_decoding
        tags = self.tagger.tags(images) if self.tagger is not None else [None] * len(images)
        if self.instruct:
            from captioner.models.styles import INSTRUCTIONS

            base = decoding.prompt or INSTRUCTIONS[decoding.style]
            captions = [self.inner.caption([image], decoding.with_changes(
                prompt=instruction_with_tags(base, found.names)))[0] for image, found in zip(images, tags)]
        else:
            captions = self.inner.caption(images, decoding)
        return [self._finish(caption, found) for caption, found in zip(captions, tags)]

    def _finish(self, caption: Caption, found) -> Caption:
        if found is not None and not caption.keywords:
            caption = replace(caption, keywords=found.names, keyword_scores=found.scores, rating=found.rating)
        if self.template:
            own = caption.keywords if self.inner.kind == "tagger" else ()
            names = found.names if found is not None else own
            caption = replace(caption, text=fill_template(self.template, "" if own else caption.text, names,
                                                          self.trigger))
        return caption


def run_settings(captioner) -> dict:
    """``captioner.run_settings()``: the choices beyond its decoding that shape its text; {} for one with none."""
    made = getattr(captioner, "run_settings", None)
    return made() if made is not None else {}


def with_tags(captioner, tagger=None, template: str | None = None, trigger: str = ""):
    """``captioner`` told ``tagger``'s tags and/or writing through ``template`` (a :class:`TaggedCaptioner`), or
    ``captioner`` itself when neither is given. ValueError, before any image is captioned, for a malformed template
    or one with another field, for a ``tagger`` that is no tagger, and for a combination that cannot work."""
    if template:
        template_fields(template)
    if tagger is None and not template:
        return captioner
    if tagger is not None and tagger.kind != "tagger":
        raise ValueError(f"--tags-from and tags_from name a tagger (kind tagger, e.g. wd-vit-tagger-v3); "
                         f"{tagger.name} is a {tagger.kind} model")
    return TaggedCaptioner(captioner, tagger, template or None, trigger)
