"""Captions in the user's language (``--language CODE``, ``language=``).

A model that takes instructions (a vision-language model, a remote one) is told to write in that language, so
text that appears in the photo is read in context rather than translated afterwards. Every other kind writes
English, and its captions go through the configured translator (local Marian models or Azure). Which of the two
happened is :attr:`CaptionsInLanguage.how`; a language that neither can produce is refused in one line before
any image is captioned.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from captioner.models.base import MAX_PROMPT_CHARACTERS, Caption, Decoding
from captioner.translation.base import LANGUAGE_NAMES, SOURCE_LANGUAGE

INSTRUCTED, TRANSLATED, AS_WRITTEN = "instructed", "translated", "as written"


def takes_instructions(captioner) -> bool:
    return getattr(getattr(captioner, "prompt_option", None), "style", None) == "instruction"


def language_instruction(instruction: str, language: str) -> str:
    """``instruction`` asking for the answer in ``language`` (a code of LANGUAGE_NAMES)."""
    asked = f" Write the answer in {LANGUAGE_NAMES[language]}."
    return instruction.rstrip()[:MAX_PROMPT_CHARACTERS - len(asked)] + asked


class CaptionsInLanguage:
    """``captioner``'s captions in ``language``: instructed when it takes instructions, else translated."""

    def __init__(self, captioner, language: str, translator=None):
        self.inner, self.language = captioner, language
        self.name, self.kind, self.info = captioner.name, captioner.kind, captioner.info
        self.default_decoding = captioner.default_decoding
        self.styles = getattr(captioner, "styles", ("caption",))
        self.prompt_option = getattr(captioner, "prompt_option", None)
        self.translator = None
        if language == SOURCE_LANGUAGE:
            self.how = AS_WRITTEN
        elif takes_instructions(captioner) and language in LANGUAGE_NAMES:
            self.how = INSTRUCTED
        elif translator is not None and language in translator.languages():
            self.how, self.translator = TRANSLATED, translator
        elif takes_instructions(captioner):
            raise ValueError(f"nothing here can write {language!r}: {captioner.name} is instructed in "
                             f"{', '.join(sorted(LANGUAGE_NAMES))}")
        else:
            offered = sorted(translator.languages()) if translator is not None else []
            where = (f"the {translator.name} translator offers {', '.join(offered) or 'none'}" if translator
                     else "no translator is configured (CAPTIONER_TRANSLATOR)")
            instructed = ", ".join(sorted(LANGUAGE_NAMES))
            raise ValueError(f"nothing here can write {language!r}: {captioner.name} writes English and {where}; "
                             f"vision-language models are instructed in {instructed}")

    def describe(self) -> dict:
        """What the answer says about its language."""
        by = {"translator": self.translator.name} if self.translator is not None else {}
        return {"code": self.language, "how": self.how, **by}

    def run_settings(self) -> dict:
        """The language beside the model's own choices, as a result row records them."""
        from captioner.models.tagged import run_settings

        return {**run_settings(self.inner), "language": self.language}

    def caption(self, images: Sequence, decoding: Decoding | None = None) -> list[Caption]:
        from captioner.models.styles import INSTRUCTIONS, keywords_of

        decoding = decoding or self.default_decoding
        if self.how == INSTRUCTED:
            prompt = language_instruction(decoding.prompt or INSTRUCTIONS[decoding.style], self.language)
            return self.inner.caption(images, decoding.with_changes(prompt=prompt))
        captions = self.inner.caption(images, decoding)
        if self.how == AS_WRITTEN:
            return captions
        return [self._translated(caption, keywords_of) for caption in captions]

    def _translated(self, caption: Caption, keywords_of) -> Caption:
        def into(text: str) -> str:
            return self.translator.translate(text, self.language) if text.strip() else text

        if caption.keyword_scores:  # a tagger's tags, one by one, so each keeps its probability
            words = tuple(into(word) for word in caption.keywords)
            return replace(caption, text=", ".join(words), keywords=words)
        text = into(caption.text)
        keywords = keywords_of(text) if caption.keywords else ()
        return replace(caption, text=text, keywords=keywords,
                       alternatives=tuple(replace(a, text=into(a.text)) for a in caption.alternatives))


def language_of(captioner) -> dict | None:
    """What an answer says about its language (:meth:`CaptionsInLanguage.describe`) when ``captioner`` is, or holds,
    one writing in a language; None else."""
    while captioner is not None:
        if isinstance(captioner, CaptionsInLanguage):
            return captioner.describe()
        captioner = getattr(captioner, "inner", None)
    return None


def in_language(captioner, language: str | None, translator):
    """``captioner`` writing in ``language`` (itself without one): a vision-language model is instructed in it,
    the others' English captions go through ``translator()``, the configured translator (made only then)."""
    if not language:
        return captioner
    return CaptionsInLanguage(captioner, language.strip(), None if takes_instructions(captioner) else translator())
