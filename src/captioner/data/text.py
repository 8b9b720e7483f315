"""Caption cleaning presets and the vocabulary.

``seed`` does exactly the original's steps: lowercase, remove special characters and numbers, collapse
spaces, drop one-letter words, wrap in ``startseq ... endseq``. ``standard`` does the same but keeps the
word "a", so captions read naturally. Evaluation always scores against raw captions, never these.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from captioner.errors import DataError
from captioner.files import write_json_atomic

START, END, PAD, UNK = "startseq", "endseq", "<pad>", "<unk>"
PRESETS = ("seed", "standard")

_NOT_LETTER = re.compile(r"[^a-z\s]")  # the original: replace("[^A-Za-z]", "") after lowercasing
_SPACES = re.compile(r"\s+")


def clean_caption(raw: str, preset: str = "standard") -> str:
    """Clean one raw caption with a preset and wrap it in start and end markers."""
    if preset not in PRESETS:
        raise ValueError(f"unknown cleaning preset {preset!r}; choose one of {', '.join(PRESETS)}")
    text = _NOT_LETTER.sub("", raw.lower())
    text = _SPACES.sub(" ", text).strip()
    keep_a = preset == "standard"
    words = [w for w in text.split() if len(w) > 1 or (keep_a and w == "a")]
    return " ".join([START, *words, END])


def strip_markers(tokens: Iterable[str]) -> list[str]:
    """Words of a decoded caption without start, end, pad and unknown markers."""
    return [t for t in tokens if t not in (START, END, PAD, UNK)]


@dataclass
class Vocabulary:
    """Words in index order; index 0 is ``<pad>``, index 1 is ``<unk>``."""

    tokens: list[str]
    preset: str = "standard"
    min_count: int = 1
    max_length: int = 0  # longest cleaned training caption in tokens, markers included

    def __post_init__(self) -> None:
        if len(self.tokens) < 4 or self.tokens[0] != PAD or self.tokens[1] != UNK:
            raise DataError("a vocabulary must start with <pad>, <unk> and hold startseq and endseq")
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise DataError("vocabulary has duplicate tokens")
        if START not in self.index or END not in self.index:
            raise DataError("vocabulary lacks startseq or endseq")

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def start_id(self) -> int:
        return self.index[START]

    @property
    def end_id(self) -> int:
        return self.index[END]

    @classmethod
    def build(cls, cleaned_captions: Iterable[str], preset: str = "standard", min_count: int = 1) -> "Vocabulary":
        """Vocabulary of the cleaned (training) captions; words rarer than ``min_count`` are left out."""
        if min_count < 1:
            raise ValueError("min_count must be at least 1")
        counts: Counter[str] = Counter()
        max_length = 0
        for caption in cleaned_captions:
            words = caption.split()
            counts.update(words)
            max_length = max(max_length, len(words))
        if not counts:
            raise DataError("cannot build a vocabulary from no captions")
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in (START, END)),
                      key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, START, END, *kept], preset=preset, min_count=min_count, max_length=max_length)

    def encode(self, caption: str) -> list[int]:
        """Token ids of a cleaned caption; unknown words become ``<unk>``."""
        return [self.index.get(word, self.unk_id) for word in caption.split()]

    def decode(self, ids: Sequence[int]) -> str:
        """Plain caption text of token ids: stops at endseq, drops markers."""
        words = []
        for i in ids:
            token = self.tokens[int(i)]
            if token == END:
                break
            words.append(token)
        return " ".join(strip_markers(words))

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "preset": self.preset, "min_count": self.min_count, "max_length": self.max_length}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        try:
            return cls(list(data["tokens"]), data.get("preset", "standard"), int(data.get("min_count", 1)),
                       int(data.get("max_length", 0)))
        except (KeyError, TypeError) as error:
            raise DataError(f"vocab.json is malformed: {error}") from None

    def save(self, path: str | Path) -> None:
        write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Vocabulary":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError(f"no vocabulary at {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path} is not valid JSON: {error}") from None
