"""A WD tagger's tag list, ``selected_tags.csv``, read as published: columns ``tag_id,name,category,count``,
one row per output of the graph, in the graph's order. Category 0 is a general tag, 4 a character, 9 a rating
(the first four rows of the published lists: general, sensitive, questionable, explicit)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from captioner.errors import ModelError

TAGS_FILE = "selected_tags.csv"
COLUMNS = ("tag_id", "name", "category", "count")
GENERAL, CHARACTER, RATING = 0, 4, 9
CATEGORIES = (GENERAL, CHARACTER, RATING)


@dataclass(frozen=True)
class TagList:
    """The names and categories of a tagger's outputs, index by index."""

    names: tuple[str, ...]  # as the list spells them (underscores kept)
    categories: tuple[int, ...]  # GENERAL, CHARACTER or RATING, one per name

    def __len__(self) -> int:
        return len(self.names)

    def indices(self, category: int) -> list[int]:
        return [index for index, found in enumerate(self.categories) if found == category]


def read_tag_list(path: str | Path) -> TagList:
    """The tag list at ``path``; a missing or malformed file is one :class:`ModelError` naming it and the row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"the tagger at {path.parent} has no {TAGS_FILE}; a WD tagger folder holds model.onnx "
                         f"and {TAGS_FILE} (columns {','.join(COLUMNS)})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"{path} cannot be read as UTF-8 text ({error})") from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header is None or tuple(column.strip() for column in header[:4]) != COLUMNS:
        raise ModelError(f"{path} is not a WD tag list: its first line must be {','.join(COLUMNS)}, "
                         f"not {','.join(header or [])[:80]!r}")
    names, categories = [], []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        name = row[1].strip() if len(row) >= 3 else ""
        category = row[2].strip() if len(row) >= 3 else ""
        if not name or not category.lstrip("-").isdigit() or int(category) not in CATEGORIES:
            raise ModelError(f"{path}, line {line}: expected tag_id,name,category,count with category "
                             f"0 (general), 4 (character) or 9 (rating), not {','.join(row)[:80]!r}")
        names.append(name)
        categories.append(int(category))
    if not names:
        raise ModelError(f"{path} lists no tags")
    return TagList(tuple(names), tuple(categories))
