"""How varied a captioner's sentences are: a model that says the same thing for every photo can still
reach fair BLEU on a data set whose captions look alike, so reports show these figures beside the scores."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

from captioner.evaluation.tokenize import python_tokenize

DISTINCT_SHARE_WARNING = 0.2  # below this share of distinct captions a model is flagged as repetitive
MOST_COMMON_SHARE_WARNING = 0.5  # ... and likewise when one sentence covers more than this share


def diversity(predictions: Mapping[str, str] | Iterable[str]) -> dict:
    """Share of distinct captions, distinct words used, mean length in words, and the most common caption.

    Captions are compared after the scoring tokenisation (lower case, no punctuation), so "A dog." and
    "a dog" count as one sentence."""
    captions = list(predictions.values()) if isinstance(predictions, Mapping) else list(predictions)
    if not captions:
        raise ValueError("there are no captions to measure")
    tokenized = python_tokenize(captions)
    counts = Counter(tokenized)
    words = [sentence.split() for sentence in tokenized]
    most_common, most_common_count = counts.most_common(1)[0]
    return {
        "captions": len(captions),  # how many captions were measured
        "distinct_captions": len(counts),  # how many different sentences among them
        "distinct_share": len(counts) / len(captions),  # 1.0: every image got its own sentence
        "vocabulary": len({w for sentence in words for w in sentence}),  # distinct words used
        "mean_length": sum(map(len, words)) / len(words),  # words per caption
        "most_common_caption": most_common,  # the sentence the model says most often
        "most_common_share": most_common_count / len(captions),  # ... and the share of images it was given to
    }


def diversity_warning(figures: dict) -> str | None:
    """One sentence saying the captioner is repetitive, or None when it is not."""
    if figures["captions"] < 5:
        return None
    if figures["distinct_share"] < DISTINCT_SHARE_WARNING or figures["most_common_share"] > MOST_COMMON_SHARE_WARNING:
        return (f"repetitive captioner: only {figures['distinct_captions']} distinct captions for "
                f"{figures['captions']} images; \"{figures['most_common_caption']}\" is given to "
                f"{figures['most_common_share']:.0%} of them")
    return None
