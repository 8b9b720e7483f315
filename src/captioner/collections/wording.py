"""A captioner as the wording options make it, said once for the command line and the collection engines
(Ray's actors rebuild it on their own nodes): a tagger's settings, tags from a tagger (``tags_from``), a
template with a trigger word, and a language. The options are plain values (:class:`WordingOptions`), so they
travel with a job. (The web service composes the same parts per request from its loaded models:
:mod:`captioner.web.composed`.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class WordingOptions:
    tags_from: str | None = None  # a tagger (folder or short name) whose tags go into the instruction and {tags}
    template: str | None = None  # e.g. "ohwx, {tags}" or "{caption}, {tags}"
    trigger: str = ""  # what {trigger} stands for
    language: str | None = None  # write in this language (instructed, or translated)
    tagger: dict = field(default_factory=dict)  # TaggerSettings changes: thresholds, undesired and first tags, ...
    models_dir: str | None = None  # where a tagger's bundle name is looked up

    @property
    def asked(self) -> bool:
        return bool(self.tags_from or self.template or self.trigger or self.language or self.tagger)

    def to_dict(self) -> dict:
        return asdict(self)


def worded(captioner, options: WordingOptions):
    """``captioner`` as ``options`` say (itself when they ask for nothing). The tagger settings apply to the
    ``tags_from`` tagger, else to ``captioner`` (a ValueError when it is no tagger); the language is that of the
    model's own text, and a template is filled in after it, so its words stay as written; a language nothing can
    produce, or a bad template, is a ValueError before any image is read."""
    from captioner.models.registry import load_captioner
    from captioner.models.tagged import template_fields, with_tags
    from captioner.models.taggers import with_settings
    from captioner.translation import TranslationSettings, create_translator
    from captioner.translation.captions import in_language

    if options.template:
        template_fields(options.template)  # a bad template is refused before the tagger loads
    tagger = None
    if options.tags_from:
        tagger = load_captioner(options.tags_from, options.models_dir)
        if tagger.kind == "tagger" and options.tagger:
            tagger = with_settings(tagger, **options.tagger)
    elif options.tagger:
        captioner = with_settings(captioner, **options.tagger)
    captioner = in_language(captioner, options.language, lambda: create_translator(TranslationSettings.from_env()))
    return with_tags(captioner, tagger, options.template, options.trigger)
