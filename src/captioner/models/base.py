"""The one interface every captioning model offers: ``Captioner.caption(images, decoding)``.

Front ends (command line, web, evaluation) only ever talk to this interface, so a new model kind is a
new module with a ``load(bundle_dir, info)`` function, registered in :mod:`captioner.models.registry`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from captioner.models.bundle import BundleInfo

DECODING_METHODS = ("greedy", "beam")
MAX_PROMPT_CHARACTERS = 200


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

    method: str = "greedy"  # "greedy" (the original's) or "beam"
    beam_size: int = 3  # beams kept per image when method == "beam"
    max_length: int = 20  # most words in a caption, not counting start and end markers
    length_penalty: float = 1.0  # beam score = log-prob / length**length_penalty (0 turns it off)
    alternatives: int = 3  # n-best captions returned beside the best one (beam search only)
    no_repeat_ngram_size: int = 0  # forbid repeating any n-gram of this size (0 = allowed)
    repetition_penalty: float = 1.0  # >1 makes already used words less likely (1 = off)
    prompt: str = ""  # the model's own prompt (BLIP's caption prefix, a Florence-2 task); "" = its default

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

    @classmethod
    def beam(cls, beam_size: int = 3, **kwargs) -> "Decoding":
        """Beam search with ``beam_size`` beams (``beam(1)`` is greedy search)."""
        return cls(method="beam", beam_size=beam_size, **kwargs)

    def with_changes(self, **changes) -> "Decoding":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Alternative:
    """One of the n-best captions, with its total log-probability under the model."""

    text: str
    log_prob: float


@dataclass(frozen=True)
class Caption:
    """The caption of one image."""

    text: str  # the best caption, plain words, no start/end markers
    score: float  # log-probability of ``text`` under the model (sum over its words)
    alternatives: tuple[Alternative, ...] = field(default_factory=tuple)  # best first, may include ``text``

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "score": self.score,
            "alternatives": [{"text": a.text, "log_prob": a.log_prob} for a in self.alternatives],
        }


@runtime_checkable
class Captioner(Protocol):
    """A loaded captioning model."""

    name: str  # bundle name or model id, as shown to users
    kind: str  # "lstm", "vit-gpt2", ...
    info: "BundleInfo"  # what captioner.json says about this model
    default_decoding: Decoding  # what ``caption`` uses when given no decoding

    def caption(self, images: Sequence["Image.Image"], decoding: Decoding | None = None) -> list[Caption]:
        """Caption RGB images that came through :func:`captioner.data.images.load_image`; one result each."""
        ...
