"""Caption styles: what a style asks of a model, how its text is finished, and who may refuse it.

The styles themselves (:data:`~captioner.models.base.CAPTION_STYLES`) are part of the decoding contract. A
model writes a style in its own way (an instruction for a vision-language model, a task for Florence-2, a
plain caption cut to length for BLIP and GIT), and every caption then goes through :func:`finish`, the one
place a style changes text: alt text loses its "image of" preamble and is cut to 125 characters on a word
boundary, keywords become a lower-case, de-duplicated list. Front ends refuse a style the model cannot write
with :func:`check_style`, whose message names the loaded models that can.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from captioner.models.base import ALT_TEXT_CHARACTERS, CAPTION_STYLES, DEFAULT_STYLE, Caption, styles_of

# The instruction a vision-language model is given for each style (a free-text prompt replaces it).
INSTRUCTIONS = {
    "caption": "Describe this image in one sentence.",
    "alt-text": "Write alt text for this image: one short sentence, under 125 characters, without 'image of'.",
    "detailed": "Describe this image in detail.",
    "keywords": "List keywords for this image, separated by commas.",
}

_PREAMBLE = re.compile(r"^\s*(?:this is\s+)?(?:an?|the)?\s*(?:close-up\s+)?(?:image|picture|photo|photograph|"
                       r"photography|illustration|drawing|painting|rendering)\s+(?:of|showing|shows|that shows)\s+",
                       re.IGNORECASE)
_KEYWORD_SPLIT = re.compile(r"[,;\n]|\s+-\s+|^\s*[-*\u2022]\s*|\d+\.\s+", re.MULTILINE)


def alt_text(text: str, limit: int = ALT_TEXT_CHARACTERS) -> str:
    """``text`` as alt text: no "image of" / "a picture of" preamble, at most ``limit`` characters, cut on a
    word boundary (a single over-long word is cut where the limit falls), first letter upper-case."""
    text = " ".join(text.split())
    stripped = _PREAMBLE.sub("", text, count=1)
    text = stripped or text
    if len(text) > limit:
        cut = text[:limit + 1].rsplit(" ", 1)[0] if " " in text[:limit + 1] else text[:limit]
        text = cut[:limit].rstrip(" ,;:-")
    return text[:1].upper() + text[1:]


def keywords_of(text: str) -> tuple[str, ...]:
    """The keywords in a model's answer (comma, semicolon, line or bullet separated): lower-case, trimmed of
    punctuation, de-duplicated, in the model's order."""
    seen: dict[str, None] = {}
    for part in _KEYWORD_SPLIT.split(text):
        word = " ".join(part.strip(" \t.:!?\"'()[]{}#*").lower().split())
        if word and len(word) <= 60:
            seen.setdefault(word, None)
    return tuple(seen)


def finish(caption: Caption, style: str) -> Caption:
    """A model's caption in ``style``: alt text cut and cleaned, keywords listed (``text`` joins them)."""
    if style == "alt-text":
        return replace(caption, text=alt_text(caption.text),
                       alternatives=tuple(replace(a, text=alt_text(a.text)) for a in caption.alternatives))
    if style == "keywords":
        keywords = keywords_of(caption.text)
        return replace(caption, text=", ".join(keywords), keywords=keywords)
    return caption


def check_style(captioner, style: str | None, loaded: Iterable = ()) -> str:
    """``style`` (None: the default) if ``captioner`` can write it; ValueError naming the models among
    ``loaded`` (captioners) that can."""
    style = style or getattr(getattr(captioner, "default_decoding", None), "style", DEFAULT_STYLE)
    if style not in CAPTION_STYLES:
        raise ValueError(f"caption style must be one of {', '.join(CAPTION_STYLES)}, not {style!r}")
    if style in styles_of(captioner):
        return style
    able = [other.name for other in loaded if style in styles_of(other)]
    where = (f"models loaded here that can: {', '.join(able)}" if able
             else "no model loaded here can; vision-language models (e.g. smolvlm-256m) write every style")
    raise ValueError(f"the model {captioner.name!r} cannot write {style!r} text "
                     f"(it writes: {', '.join(styles_of(captioner))}); {where}")
