"""From a tagger's probabilities to the tags a training set or a photo library keeps, the way the WD taggers'
own tools choose them (SmilingWolf's demo, kohya's sd-scripts, TagGUI):

- a general tag is kept at ``general_threshold`` or above, a character tag at ``character_threshold`` or
  above; the rating is never a tag but reported apart (the most probable of the four);
- undesired tags are dropped, and the always-first tags that were found lead, in the order given;
- then character tags, then general tags, each most probable first;
- underscores become spaces unless kept, except in kaomoji (``^_^`` stays ``^_^``).
"""

from __future__ import annotations

from dataclasses import dataclass

from captioner.models.taggers.tag_list import CHARACTER, GENERAL, RATING, TagList

# Tags whose underscore is part of the face, as the WD tools leave them.
KAOMOJI = frozenset({"0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3", "6_9",
                     ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||"})


@dataclass(frozen=True)
class TaggerSettings:
    """Which of a tagger's tags to keep, and how to write them."""

    general_threshold: float = 0.35  # keep a general tag at this probability or above
    character_threshold: float = 0.85  # keep a character tag at this probability or above
    undesired_tags: tuple[str, ...] = ()  # never write these (with underscores or spaces, either matches)
    always_first_tags: tuple[str, ...] = ()  # when found, these lead, in this order
    keep_underscores: bool = False  # write "long_hair" as published instead of "long hair"
    # Images per ONNX Runtime call. One: the ViT taggers are compute-bound on a CPU, and a batch of 8 was measured
    # 6% to 11% slower than one image per call (benchmarks/bench_tagger.py, docs/benchmarks.md).
    batch_size: int = 1

    def __post_init__(self) -> None:
        for name in ("general_threshold", "character_threshold"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"the {name.replace('_', ' ')} is a probability between 0 and 1, not {value}")
        if self.batch_size < 1:
            raise ValueError(f"the tagger's batch size must be at least 1, not {self.batch_size}")


@dataclass(frozen=True)
class Tags:
    """One image's tags, most important first, with their probabilities, and its rating."""

    names: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()  # the probability of each name
    rating: tuple[str, float] | None = None  # (rating tag, its probability); None when the list has none


def written(name: str, keep_underscores: bool) -> str:
    return name if keep_underscores or name in KAOMOJI else name.replace("_", " ")


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def select_tags(probabilities, tag_list: TagList, settings: TaggerSettings) -> Tags:
    """The tags of one image from its ``probabilities`` (one per entry of ``tag_list``)."""
    values = [float(p) for p in probabilities]
    undesired = {_key(name) for name in settings.undesired_tags}
    threshold = {GENERAL: settings.general_threshold, CHARACTER: settings.character_threshold}
    kept: list[tuple[int, str, float]] = []  # (category, name, probability)
    for category in (CHARACTER, GENERAL):
        found = [(values[i], tag_list.names[i]) for i in tag_list.indices(category)
                 if values[i] >= threshold[category] and _key(tag_list.names[i]) not in undesired]
        kept.extend((category, name, p) for p, name in sorted(found, key=lambda item: -item[0]))
    first = {_key(name): order for order, name in enumerate(settings.always_first_tags)}
    kept.sort(key=lambda item: first.get(_key(item[1]), len(first)))  # stable: the rest keep their order
    ratings = [(values[i], tag_list.names[i]) for i in tag_list.indices(RATING)]
    rating = None
    if ratings:
        p, name = max(ratings, key=lambda item: item[0])
        rating = (name, p)
    names = tuple(written(name, settings.keep_underscores) for _, name, _ in kept)
    return Tags(names, tuple(p for _, _, p in kept), rating)
