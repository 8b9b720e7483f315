"""Keywords for a photo whose model writes no ``keywords`` style: the nouns of its caption.

No tagger data can be assumed (nltk's and spaCy's models are downloads), and captions are short, plain
sentences, so the nouns are found by the shape of an English noun phrase: a caption is cut into runs of
content words at function words (articles, prepositions, pronouns, auxiliaries), at common caption verbs and
at verb forms (``-ing``, ``-ed``), and the last word of each run is its head noun: "a man in a red shirt
rides a bike" gives man, shirt, bike. A run right after "is"/"are" without an article is a predicate
("the car is red") and gives nothing.
"""

from __future__ import annotations

import re

MAX_KEYWORDS = 10
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every no one two three four five six seven eight nine ten several
many few both all other another his her their its our my your of in on at by with without from to into onto
over under above below near behind beside between through across along around against toward towards up down
out off about for as while and or but nor so then than there here it they he she we you i him them us me who
which what where when why how not very also just only too is are was were be been being am has have had do
does did can could will would shall should may might must looking looks stands stand sits sit runs run
walks walk plays play jumps jump rides ride holds hold wears wear lies lie swims swim climbs climb eats eat
flies fly poses pose waits wait watches watch carries carry throws throw catches catch pulls pull pushes push
sleeps sleep smiles smile stares stare grazes graze drinks drink reads read talks talk front top side next
together other away back large small big little tall young old
""".split())
COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "being", "am"})
NOUNS_ENDING_LIKE_VERBS = frozenset({"building", "buildings", "clothing", "ceiling", "painting", "paintings",
                                     "evening", "morning", "wedding", "railing", "pudding", "sibling",
                                     "siblings", "bed", "shed", "sled", "seed", "weed", "reed", "steed"})


def caption_nouns(text: str, limit: int = MAX_KEYWORDS) -> tuple[str, ...]:
    """The head nouns of ``text``, lower-case, without repeats, in the caption's order (at most ``limit``)."""
    heads: dict[str, None] = {}
    run: list[str] = []
    after_copula = False
    for word in re.findall(r"[a-z]+", text.lower()) + [""]:
        if word and word not in FUNCTION_WORDS and not _verb_like(word):
            run.append(word)
            continue
        if run and not after_copula:
            heads.setdefault(run[-1], None)
        run = []
        after_copula = word in COPULAS
    return tuple(heads)[:limit]


def _verb_like(word: str) -> bool:
    if word in NOUNS_ENDING_LIKE_VERBS:
        return False
    return len(word) < 2 or (word.endswith("ing") and len(word) > 5) or (word.endswith("ed") and len(word) > 4)
