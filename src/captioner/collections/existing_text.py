"""What happens to text already where captioner is about to write: the one rule every write target follows
(photo metadata, caption files beside images, and connectors to photo managers).

A text is captioner's own only while it is still exactly what captioner's record says it wrote (or a
person's text with exactly that appended or prepended); anything else is a person's or another tool's, and
``existing`` says what to do with it: ``skip`` (the default) leaves it alone, ``replace`` writes over it,
``append`` adds the caption after it and ``prepend`` puts the caption before it. captioner's own text is
replaced when the model, style or settings changed, and left as it is when they did not; the person's part
beside it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

EXISTING = ("skip", "replace", "append", "prepend")  # what to do with text captioner did not write
KEPT = "kept: a person's or another tool's text"


@dataclass(frozen=True)
class Decision:
    """What to do with one field (or file): the action shown to people, and the text to write."""

    action: str  # "new", "unchanged", "updated", "replaced", "appended", "prepended" or KEPT
    value: str | None  # the whole text to write; None when nothing is written
    wholly_ours: bool = False  # the new text is captioner's alone (no person's part kept beside it)


def check_existing(existing: str, allowed: Sequence[str] = EXISTING) -> str:
    if existing not in allowed:
        raise ValueError(f"--existing must be one of {', '.join(allowed)}, not {existing!r}")
    return existing


def decide(present: Sequence[str], ours: str | None, same_source: bool, caption: str, existing: str,
           joiner: str, *, anything: bool | None = None) -> Decision:
    """The decision for writing ``caption`` where the texts ``present`` are (several when a field is read from
    several places; they must all agree to count as captioner's). ``ours`` is the text captioner's record says
    it wrote there (None without a record); ``same_source`` whether that record came from the same model,
    style and settings; ``joiner`` goes between a person's text and the caption. ``anything`` says whether any
    text is there at all (default: whether ``present`` holds any)."""
    present = list(present)
    if not (bool(present) if anything is None else anything):
        return Decision("new", caption, wholly_ours=True)
    if ours and present and all(text == ours for text in present):
        return Decision("unchanged", None, True) if same_source else Decision("updated", caption, True)
    if ours and present and existing != "replace":
        if all(text.endswith(joiner + ours) for text in present):
            person = present[0][:-len(joiner + ours)]
            return Decision("unchanged", None) if same_source else Decision("updated", person + joiner + caption)
        if all(text.startswith(ours + joiner) for text in present):
            person = present[0][len(ours + joiner):]
            return Decision("unchanged", None) if same_source else Decision("updated", caption + joiner + person)
    if existing == "skip":
        return Decision(KEPT, None)
    if existing == "replace":
        return Decision("replaced", caption, wholly_ours=True)
    person = present[0] if present else ""
    if not person:
        return Decision("new", caption)
    if existing == "append":
        return Decision("appended", person + joiner + caption)
    return Decision("prepended", caption + joiner + person)
