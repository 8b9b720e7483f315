"""The one interface every captioning model offers: ``Captioner.caption(images, decoding)``.

Front ends (command line, web, evaluation) only ever talk to this interface, so a new model kind is a
new module with a ``load(bundle_dir, info)`` function, registered in :mod:`captioner.models.registry`.

The decoding contract, the same for every kind:

- ``max_length`` counts the WORDS of a caption (as ``text.split()`` counts them), start and end markers
  not included. A kind that decodes sub-words converts exactly: it ends the caption once it holds
  ``max_length`` words, so no caption is longer.
- ``alternatives=N`` asks for the N best captions other than the best one, best first, all different
  from each other and from the best. A beam of K keeps K captions, so there are min(N, K - 1); fewer
  only when the search found fewer different ones. Greedy search has none.
- ``Caption.score`` (and ``Alternative.log_prob``) is the caption's total log-probability under the model:
  the sum of the model's own log-probabilities of its tokens, the end marker included. A caption cut at
  ``max_length`` words is ended there, and the end marker's log-probability at that point counts too.
  Repetition rules and the beam's length normalisation choose the captions but never change this number.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Decoding:
    """How to turn a model's word probabilities into a sentence."""

    method: str = "greedy"  # "greedy" (the original's), "beam", or "sample" (temperature and top_p)
    beam_size: int = 3  # beams kept per image when method == "beam"
    max_length: int = 20  # most words in a caption, not counting start and end markers
    length_penalty: float = 1.0  # beam score = log-prob / length**length_penalty (0 turns it off)
    alternatives: int = 3  # next-best captions returned beside the best one (beam search only)
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

    One rule for every front end: a beam width means beam search, ``method="beam"`` without a width keeps
    the model's width, and ``method="greedy"`` with a width above 1 is a contradiction, refused with a
    ValueError (a beam of one is greedy search, so ``greedy`` with width 1 is accepted).
    """

    method: str | None = None  # "greedy", "beam", or None for the model's own method
    beam_size: int | None = None  # beams; None keeps the model's width
    max_length: int | None = None  # most words in a caption; None keeps the model's
    alternatives: int | None = None  # next-best captions to return; None keeps the model's
    prompt: str | None = None  # the model's own prompt; None keeps the model's (checked by check_prompt)
    temperature: float | None = None  # sampling temperature; 0 means the model's own deterministic decoding
    top_p: float | None = None  # nucleus sampling; None keeps 1 (every word may be drawn)
    seed: int | None = None  # sampling seed; None draws differently each time
    style: str | None = None  # one of CAPTION_STYLES; None keeps the default (a one-sentence caption)

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in DECODING_METHODS:
            raise ValueError(f"decoding method must be one of {', '.join(DECODING_METHODS)}, not {self.method!r}")
        if self.method == "greedy" and self.beam_size is not None and self.beam_size > 1:
            raise ValueError(f"greedy search and a beam of {self.beam_size} contradict each other; "
                             "ask for one of them")

    def for_default(self, default: Decoding) -> Decoding:
        """``default`` (a model's own decoding) changed as this request says."""
        changes: dict = {}
        if self.beam_size is not None:
            changes.update(method="greedy" if self.method == "greedy" else "beam", beam_size=self.beam_size)
        elif self.method is not None:
            changes["method"] = self.method
        if self.max_length is not None:
            changes["max_length"] = self.max_length
        if self.alternatives is not None:
            changes["alternatives"] = self.alternatives
        if self.prompt is not None:
            changes["prompt"] = self.prompt
        if self.style is not None:
            changes["style"] = self.style
            if self.style == "detailed" and self.max_length is None:  # a one-line caption's length is too short
                from captioner.models.styles import DETAILED_WORDS

                changes["max_length"] = max(default.max_length, DETAILED_WORDS)
        return default.with_changes(**changes)


@dataclass(frozen=True)
class Alternative:
    """One of the n-best captions, with its total log-probability under the model."""

    text: str
    log_prob: float


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

    text: str  # the best caption, plain words, no start/end markers
    score: float  # total log-probability of ``text`` under the model, the end marker included
    alternatives: tuple[Alternative, ...] = field(default_factory=tuple)  # next-best captions, never ``text``
    attention: AttentionMaps | None = None  # per-word maps of ``text``, from models that attend (not in to_dict)
    keywords: tuple[str, ...] = ()  # the "keywords" style: lower-case, de-duplicated, in the model's order

    @classmethod
    def from_ranked(cls, ranked: Sequence[tuple[str, float]], decoding: "Decoding") -> "Caption":
        """The best of a search's (text, log-probability) captions, best first, with the alternatives asked for."""
        if not ranked:
            return cls("", float("-inf"))
        (best, score), seen = ranked[0], {ranked[0][0]}
        alternatives: list[Alternative] = []
        wanted = min(decoding.alternatives, decoding.beam_size - 1) if decoding.method == "beam" else 0
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
