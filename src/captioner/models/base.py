"""The one interface every captioning model offers: ``Captioner.caption(images, decoding)``.

Front ends (command line, web, evaluation) only ever talk to this interface, so a new model kind is a
new module with a ``load(bundle_dir, info)`` function, registered in :mod:`captioner.models.registry`.

The decoding contract, the same for every kind:

- ``max_length`` counts the WORDS of a caption (as ``text.split()`` counts them), start and end markers
  not included. A kind that decodes sub-words converts exactly: it ends the caption once it holds
  ``max_length`` words, so no caption is longer.
- ``alternatives=N`` asks for the N best captions other than the best one, best first, all different
  from each other and from the best. A beam of K keeps K captions, so there are min(N, K - 1); fewer
  only when the search found fewer different ones. Greedy search has none. Sampling (``method="sample"``)
  draws the caption and then 2N further captions of the same image, and keeps, in the order drawn, the
  first N that differ from the caption and from each other: N further samples, fewer only when the model
  keeps writing the same words. The caption itself is the first draw, whatever N is.
- Sampling draws each token from the model's probabilities with the log-probabilities divided by
  ``temperature``, within the nucleus of the fewest most likely tokens that hold ``top_p`` of the
  probability. With a ``seed``, the same seed, image, model and options give the same captions, whichever
  other images share the batch; ``seed=None`` draws differently each time.
- ``Caption.score`` (and ``Alternative.log_prob``) is the caption's total log-probability under the model:
  the sum of the model's own log-probabilities of its tokens, the end marker included. A caption cut at
  ``max_length`` words is ended there, and the end marker's log-probability at that point counts too.
  Repetition rules, the beam's length normalisation and sampling's temperature and ``top_p`` choose the
  captions but never change this number.
  One exception, stated where it happens: a remote model (kind ``remote``) knows only what its endpoint
  returns. When the endpoint gives token log-probabilities, ``score`` is their sum over the tokens up to
  where the caption ends (endpoints do not report the end marker's, so it is not counted); when it gives
  none, ``score`` is None: the caption carries no score, rather than a number that would mean something else.
  Remote models return no alternatives.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from captioner.models.bundle import BundleInfo

DECODING_METHODS = ("greedy", "beam", "sample")
MAX_PROMPT_CHARACTERS = 200

# What kind of text a caption is. Each model says which it can write (``Captioner.styles``); every front end
# offers the same option (``--style``, ``style=``) and refuses a style the model cannot write.
CAPTION_STYLES = ("caption", "alt-text", "detailed", "keywords")
DEFAULT_STYLE = "caption"
ALT_TEXT_CHARACTERS = 125  # the longest alt text (screen readers' and CMSs' common limit)
DETAILED_WORDS = 80  # the word limit of a "detailed" request that sets none (a one-line caption's is too short)


@dataclass(frozen=True)
class PromptOption:
    """How a model can be steered by a prompt (models without one have ``prompt_option = None``)."""

    style: str  # "prefix": free text the caption continues; "task": one of ``choices``
    choices: tuple[str, ...] = ()  # the accepted prompts when style == "task"
    default: str = ""  # the prompt used when a request gives none ("" = no prompt)
    example: str = ""  # a prompt worth trying, shown as a hint

    def check(self, prompt: str) -> str:
        """The prompt to use for ``prompt`` (the default for ""); ValueError for a prompt this model refuses."""
        prompt = prompt.strip()
        if not prompt:
            return self.default
        if self.style == "task" and prompt not in self.choices:
            raise ValueError(f"this model's prompt must be one of {', '.join(self.choices)}, not {prompt[:40]!r}")
        return prompt

    def to_dict(self) -> dict:
        return asdict(self)


def check_prompt(captioner, prompt: str) -> str:
    """``prompt`` checked against what ``captioner`` accepts; ValueError when it takes none or not this one."""
    option = getattr(captioner, "prompt_option", None)
    if option is None:
        if prompt.strip():
            raise ValueError(f"the model {captioner.name!r} takes no prompt")
        return ""
    return option.check(prompt)


def _check_seed(seed) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be a whole number, not {seed!r}")


@dataclass(frozen=True)
class Decoding:
    """How to turn a model's word probabilities into a sentence."""

    method: str = "greedy"  # "greedy" (the original's), "beam", or "sample" (temperature and top_p)
    beam_size: int = 3  # beams kept per image when method == "beam"
    max_length: int = 20  # most words in a caption, not counting start and end markers
    length_penalty: float = 1.0  # beam score = log-prob / length**length_penalty (0 turns it off)
    alternatives: int = 3  # next-best captions returned beside the best one (beam search), further samples (sample)
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size (0 = allowed)
    repetition_penalty: float = 1.0  # >1 makes already used words less likely (1 = off)
    prompt: str = ""  # the model's own prompt (BLIP's caption prefix, a Florence-2 task); "" = its default
    temperature: float = 1.0  # method == "sample": log-probabilities divided by this before drawing (> 0)
    top_p: float = 1.0  # method == "sample": draw from the smallest set of words holding this much probability
    seed: int | None = None  # method == "sample": the same seed, image and model give the same caption
    style: str = DEFAULT_STYLE  # one of CAPTION_STYLES: what kind of text to write

    def __post_init__(self) -> None:
        if self.method not in DECODING_METHODS:
            raise ValueError(f"decoding method must be one of {', '.join(DECODING_METHODS)}, not {self.method!r}")
        if not 1 <= self.beam_size <= 32:
            raise ValueError(f"beam size must be between 1 and 32, not {self.beam_size}")
        if not 1 <= self.max_length <= 200:
            raise ValueError(f"max length must be between 1 and 200 words, not {self.max_length}")
        if self.length_penalty < 0:
            raise ValueError("length penalty must not be negative")
        if self.alternatives < 0:
            raise ValueError("alternatives must not be negative")
        if self.no_repeat_ngram_size < 0:
            raise ValueError("no_repeat_ngram_size must not be negative")
        if self.repetition_penalty <= 0:
            raise ValueError("repetition penalty must be positive")
        if len(self.prompt) > MAX_PROMPT_CHARACTERS:
            raise ValueError(f"the prompt must be at most {MAX_PROMPT_CHARACTERS} characters")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be above 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be above 0 and at most 1, not {self.top_p}")
        if self.style not in CAPTION_STYLES:
            raise ValueError(f"caption style must be one of {', '.join(CAPTION_STYLES)}, not {self.style!r}")
        _check_seed(self.seed)

    @classmethod
    def beam(cls, beam_size: int = 3, **kwargs) -> "Decoding":
        """Beam search with ``beam_size`` beams (``beam(1)`` is greedy search)."""
        return cls(method="beam", beam_size=beam_size, **kwargs)

    def with_changes(self, **changes) -> "Decoding":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DecodingRequest:
    """The decoding options a user gave (command line, form or query string); unset ones keep the model's.

    One rule for every front end (the command line, the native API, the OpenAI- and Ollama-compatible routes):

    - A beam width means beam search, ``method="beam"`` without a width keeps the model's width, and
      ``method="greedy"`` with a width above 1 is a contradiction, refused with a ValueError (a beam of one
      is greedy search, so ``greedy`` with width 1 is accepted).
    - Sampling is asked for by ``method="sample"``, a ``temperature`` above 0, a ``top_p`` or a ``seed``;
      what is not given keeps the model's (temperature and top_p 1: the model's own distribution). It
      draws the caption and no alternatives unless ``alternatives`` asks for some (a beam's next-best
      captions come free, further samples do not).
    - ``temperature=0`` means the model's own deterministic decoding (OpenAI's convention; greedy search
      for a model that samples by default); a ``top_p`` or ``seed`` beside it is ignored, as OpenAI and
      Ollama ignore them there.
    - Sampling together with ``method="greedy"``, ``method="beam"`` or a beam width above 1 is a
      contradiction, refused with a ValueError, and so is ``method="sample"`` with ``temperature=0``.
    """

    method: str | None = None  # "greedy", "beam", "sample", or None for the model's own method
    beam_size: int | None = None  # beams; None keeps the model's width
    max_length: int | None = None  # most words in a caption; None keeps the model's
    alternatives: int | None = None  # next-best captions (or further samples) to return; None keeps the model's
    prompt: str | None = None  # the model's own prompt; None keeps the model's (checked by check_prompt)
    temperature: float | None = None  # sampling temperature (>= 0); 0 means the model's own deterministic decoding
    top_p: float | None = None  # nucleus sampling, above 0 and at most 1; None keeps the model's (1: every word)
    seed: int | None = None  # sampling seed, any whole number; None draws differently each time
    style: str | None = None  # one of CAPTION_STYLES; None keeps the default (a one-sentence caption)

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in DECODING_METHODS:
            raise ValueError(f"decoding method must be one of {', '.join(DECODING_METHODS)}, not {self.method!r}")
        if self.method == "greedy" and self.beam_size is not None and self.beam_size > 1:
            raise ValueError(f"greedy search and a beam of {self.beam_size} contradict each other; "
                             "ask for one of them")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be 0 or more, not {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be above 0 and at most 1, not {self.top_p}")
        _check_seed(self.seed)
        if self.temperature == 0 and self.method == "sample":
            raise ValueError("sampling at temperature 0 is no sampling; give a temperature above 0, "
                             "or leave out the sample method for the model's deterministic decoding")
        if self.wants_sampling:
            deterministic = f"{self.method} search" if self.method in ("greedy", "beam") else (
                f"a beam of {self.beam_size}" if self.beam_size is not None and self.beam_size > 1 else None)
            if deterministic is not None:
                asked = ", ".join(name for name, value in (("method sample", self.method == "sample"),
                                                           ("temperature", self.temperature is not None),
                                                           ("top_p", self.top_p is not None),
                                                           ("seed", self.seed is not None)) if value)
                raise ValueError(f"sampling ({asked}) and {deterministic} contradict each other; "
                                 "ask for one of them")

    @property
    def wants_sampling(self) -> bool:
        """True when this request asks for sampling (see the rule above)."""
        if self.temperature == 0:
            return False
        return self.method == "sample" or self.temperature is not None or self.top_p is not None \
            or self.seed is not None

    def for_default(self, default: Decoding) -> Decoding:
        """``default`` (a model's own decoding) changed as this request says."""
        changes: dict = {}
        if self.wants_sampling:
            changes["method"] = "sample"
            if default.method != "sample":
                changes["alternatives"] = 0
            for name in ("temperature", "top_p", "seed"):
                if getattr(self, name) is not None:
                    changes[name] = getattr(self, name)
        elif self.beam_size is not None:
            changes.update(method="greedy" if self.method == "greedy" else "beam", beam_size=self.beam_size)
        elif self.method is not None:
            changes["method"] = self.method
        elif self.temperature == 0 and default.method == "sample":
            changes["method"] = "greedy"
        if self.max_length is not None:
            changes["max_length"] = self.max_length
        if self.alternatives is not None:
            changes["alternatives"] = self.alternatives
        if self.prompt is not None:
            changes["prompt"] = self.prompt
        if self.style is not None:
            changes["style"] = self.style
            if self.style == "detailed" and self.max_length is None:  # a one-line caption's length is too short
                changes["max_length"] = max(default.max_length, DETAILED_WORDS)
        return default.with_changes(**changes)


@dataclass(frozen=True)
class Alternative:
    """One of the n-best captions, with its total log-probability under the model."""

    text: str  # the caption, plain words
    log_prob: float  # its total log-probability under the model, the end marker included


@dataclass(frozen=True)
class AttentionMaps:
    """Where an attention model looked for each word of a caption."""

    grid: tuple[int, int]  # rows, cols of the image grid the model attends over
    words: tuple[str, ...]  # the caption's words, in order
    weights: tuple[tuple[float, ...], ...]  # per word, rows * cols weights in row-major order, summing to 1

    def to_dict(self) -> dict:
        return {"grid": list(self.grid), "words": list(self.words),
                "maps": [[round(w, 5) for w in weights] for weights in self.weights]}


@dataclass(frozen=True)
class Caption:
    """The caption of one image."""

    text: str  # the best caption (sampling: the first drawn), plain words, no start/end markers
    score: float | None  # total log-probability of ``text`` under the model, the end marker included (None: unknown)
    alternatives: tuple[Alternative, ...] = field(default_factory=tuple)  # next-best captions, never ``text``
    attention: AttentionMaps | None = None  # per-word maps of ``text``, from models that attend (not in to_dict)
    keywords: tuple[str, ...] = ()  # the "keywords" style: lower-case, de-duplicated, in the model's order
    keyword_scores: tuple[float, ...] = ()  # a tagger's probability of each keyword (empty: the model gives none)
    rating: tuple[str, float] | None = None  # a tagger's content rating and its probability, apart from keywords

    @classmethod
    def from_ranked(cls, ranked: Sequence[tuple[str, float]], decoding: "Decoding") -> "Caption":
        """The best of a search's (text, log-probability) captions, best first, with the alternatives asked for
        (sampling: the first drawn, then the further samples in the order drawn)."""
        if not ranked:
            return cls("", float("-inf"))
        (best, score), seen = ranked[0], {ranked[0][0]}
        alternatives: list[Alternative] = []
        wanted = {"beam": min(decoding.alternatives, decoding.beam_size - 1),
                  "sample": decoding.alternatives}.get(decoding.method, 0)
        for text, log_prob in ranked[1:]:
            if len(alternatives) == wanted:
                break
            if text not in seen:
                seen.add(text)
                alternatives.append(Alternative(text, log_prob))
        return cls(best, score, tuple(alternatives))

    def to_dict(self) -> dict:
        answer = {
            "text": self.text,
            "score": self.score,
            "alternatives": [{"text": a.text, "log_prob": a.log_prob} for a in self.alternatives],
        }
        if self.keywords:
            answer["keywords"] = list(self.keywords)
        if self.keyword_scores:
            answer["keyword_scores"] = [round(p, 4) for p in self.keyword_scores]
        if self.rating is not None:
            answer["rating"] = {"label": self.rating[0], "probability": round(self.rating[1], 4)}
        return answer


@runtime_checkable
class Captioner(Protocol):
    """A loaded captioning model."""

    name: str  # bundle name or model id, as shown to users
    kind: str  # "lstm", "vit-gpt2", ...
    info: "BundleInfo"  # what captioner.json says about this model
    default_decoding: Decoding  # what ``caption`` uses when given no decoding
    # The kinds of text it can write (CAPTION_STYLES); a kind without the attribute writes captions only:
    # read it through ``styles_of``.

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Caption RGB images that came through :func:`captioner.data.images.load_image`; one result each."""
        ...


def styles_of(captioner) -> tuple[str, ...]:
    """The caption styles ``captioner`` can write (a model that says nothing writes plain captions only)."""
    return tuple(getattr(captioner, "styles", (DEFAULT_STYLE,)))
