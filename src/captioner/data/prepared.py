"""The prepared folder that ``captioner data prepare`` writes and training and evaluation read.

```
PREPARED_DIR/
  prepared.json   data set location, layout, cleaning settings, per-split counts, what was dropped
  vocab.json      the Vocabulary, built from the training split only
  train.jsonl     one image per line: {"image", "captions" (cleaned), "references" (raw)}
  val.jsonl
  test.jsonl
```
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable

from captioner.data.records import SPLITS
from captioner.data.text import Vocabulary
from captioner.errors import DataError
from captioner.files import staged_folder

PREPARED_FILE = "prepared.json"
VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class PreparedItem:
    """One image of a prepared split."""

    image: str  # file name relative to the images folder
    captions: tuple[str, ...]  # cleaned, "startseq ... endseq"
    references: tuple[str, ...]  # raw captions, for evaluation


class PreparedData:
    """Read access to a prepared folder."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path = self.folder / PREPARED_FILE
        if not meta_path.is_file():
            raise DataError(f"{self.folder} is not a prepared data folder (no {PREPARED_FILE}); "
                            "run 'captioner data prepare DATASET_DIR --out PREPARED_DIR' first")
        try:
            self.meta: dict = json.loads(meta_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{meta_path} is damaged ({error}); run 'captioner data prepare' again") from None
        self.images_dir = Path(self.meta["images_dir"])
        self._splits: dict[str, list[PreparedItem]] = {}

    @classmethod
    def in_memory(cls, folder: str | os.PathLike, meta: dict, vocabulary: Vocabulary,
                  splits: dict[str, list[PreparedItem]]) -> "PreparedData":
        """A data set prepared in memory (see :func:`captioner.data.prepare.open_dataset`); nothing is read."""
        data = cls.__new__(cls)
        data.folder, data.meta, data.images_dir = Path(folder), meta, Path(meta["images_dir"])
        data._splits = dict(splits)
        data.__dict__["vocabulary"] = vocabulary  # the cached property, already known
        return data

    @property
    def name(self) -> str:
        return self.meta.get("name", "dataset")

    @cached_property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary.load(self.folder / VOCAB_FILE)

    def image_path(self, image: str) -> Path:
        return self.images_dir / image

    def split(self, name: str) -> list[PreparedItem]:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        if name not in self._splits:
            path = self.folder / f"{name}.jsonl"
            if not path.is_file():
                raise DataError(f"{path} is missing; run 'captioner data prepare' again")
            items = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    items.append(PreparedItem(row["image"], tuple(row["captions"]), tuple(row["references"])))
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise DataError(f"{path}, line {number}: not a prepared record; run 'captioner data prepare' again") from None
            self._splits[name] = items
        return self._splits[name]


def write_prepared(folder: str | os.PathLike, meta: dict, vocabulary: Vocabulary,
                   splits: dict[str, Iterable[PreparedItem]]) -> None:
    """Write a whole prepared folder, all or nothing."""
    with staged_folder(folder) as staging:
        for name, items in splits.items():
            with open(staging / f"{name}.jsonl", "w", encoding="utf-8") as out:
                for item in items:
                    out.write(json.dumps({"image": item.image, "captions": list(item.captions),
                                          "references": list(item.references)}, ensure_ascii=False) + "\n")
        vocabulary.save(staging / VOCAB_FILE)
        (staging / PREPARED_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
