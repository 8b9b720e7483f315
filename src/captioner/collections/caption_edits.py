"""Edits a person asks for across the caption files of a training set: find and replace, add or remove a tag,
set the trigger word. Pure functions from a caption file's text to its new text, so each rule is said once
and tested alone; :mod:`captioner.collections.dataset_folder` applies them to files.

A caption file may hold several captions, one per line (OneTrainer picks a line per step); every edit works
on each line. Tags are the parts of a line between separators (``", "`` by default, as kohya's
``caption_separator``); the trigger word is a line's first tag (kohya's ``keep_tokens`` keeps it in place).
"""

from __future__ import annotations

from typing import Callable

SEPARATOR = ", "

Edit = Callable[[str], str]  # a caption file's text -> its new text


def _each_line(text: str, change: Callable[[str], str]) -> str:
    return "\n".join(change(line) if line.strip() else line for line in text.split("\n"))


def tags_of(line: str, separator: str = SEPARATOR) -> list[str]:
    """A line's tags, trimmed, empty ones left out."""
    mark = separator.strip() or separator
    return [tag.strip() for tag in line.split(mark) if tag.strip()]


def _joined(tags: list[str], separator: str) -> str:
    return separator.join(tags)


def replace_text(find: str, replacement: str) -> Edit:
    """Every occurrence of ``find`` (exactly, case and all) replaced by ``replacement``."""
    if not find:
        raise ValueError("find must not be empty: say which text to replace")
    return lambda text: text.replace(find, replacement)


def count_text(text: str, find: str) -> int:
    return text.count(find) if find else 0


def add_tag(tag: str, separator: str = SEPARATOR) -> Edit:
    """``tag`` added at the end of each line that does not have it yet."""
    tag = _checked_tag(tag)

    def change(line: str) -> str:
        tags = tags_of(line, separator)
        return line if tag in tags else _joined(tags + [tag], separator)

    return lambda text: _each_line(text, change) if text.strip() else tag


def remove_tag(tag: str, separator: str = SEPARATOR) -> Edit:
    """Every ``tag`` (exactly) taken out of each line; the other tags keep their order."""
    tag = _checked_tag(tag)

    def change(line: str) -> str:
        tags = tags_of(line, separator)
        return line if tag not in tags else _joined([item for item in tags if item != tag], separator)

    return lambda text: _each_line(text, change)


def set_trigger(trigger: str, old: str = "", separator: str = SEPARATOR) -> Edit:
    """``trigger`` as each line's first tag: an ``old`` trigger in first place is replaced by it; a line that
    starts with ``trigger`` already is left as it is; any other line gets it put in front."""
    trigger = _checked_tag(trigger)
    old = old.strip()

    def change(line: str) -> str:
        tags = tags_of(line, separator)
        if tags and tags[0] == trigger:
            return line
        if old and tags and tags[0] == old:
            tags = tags[1:]
        return _joined([trigger] + [tag for tag in tags if tag != trigger], separator)

    return lambda text: _each_line(text, change) if text.strip() else trigger


def _checked_tag(tag: str) -> str:
    tag = (tag or "").strip()
    if not tag:
        raise ValueError("the tag must not be empty")
    if "\n" in tag:
        raise ValueError("a tag is one line: it must not hold a line break")
    return tag
