"""The transformers image-to-text architectures captioner supports, and how a model folder names its own.

:data:`ARCHITECTURES` is a small table of what differs between them: the native transformers class (never
remote code), the prompt the model takes, its default decoding, and whether ``captioner train`` fine-tunes
it. A folder's architecture comes from its ``config.json`` (``model_type``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from captioner.errors import ModelError
from captioner.models.base import CAPTION_STYLES, Decoding, PromptOption

FLORENCE_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")


@dataclass(frozen=True)
class Architecture:
    """What one transformers image-to-text architecture needs."""

    name: str  # short name shown to users: "vit-gpt2", "blip", "git", "florence-2", "smolvlm", ...
    model_types: tuple[str, ...]  # config.json "model_type" values of this architecture
    class_name: str  # the native transformers class that loads it
    prompt: PromptOption | None  # the prompt it takes (None: none)
    default_decoding: Decoding  # decoding when a bundle or request says nothing
    not_fine_tuned: str = ""  # "" when `captioner train` fine-tunes it, else the reason it does not
    styles: tuple[str, ...] = ("caption", "alt-text")  # the caption styles it writes (alt text: its caption, cut)
    style_prompts: tuple[tuple[str, str], ...] = ()  # (style, prompt) where a style has a prompt of its own
    vision_language: bool = False  # a chat model answering an instruction (captioner.models.transformers.vlm)

    def model_class(self):
        import transformers

        return getattr(transformers, self.class_name)

    @property
    def fine_tunable(self) -> bool:
        return not self.not_fine_tuned


def _vision_language(name: str, model_types: tuple[str, ...], class_name: str, styles=CAPTION_STYLES,
                     style_prompts: tuple[tuple[str, str], ...] = ()) -> Architecture:
    """A vision-language model: a free-text instruction (each style has one), greedy by default (what their
    authors show), no fine-tuning here."""
    return Architecture(name, model_types, class_name,
                        PromptOption("instruction", example="Describe the colours in this image."),
                        Decoding(method="greedy", max_length=30, alternatives=0),
                        not_fine_tuned="captioner train fine-tunes encoder-decoder captioners; vision-language models "
                                       "are used as their authors instruction-tuned them",
                        styles=styles, style_prompts=style_prompts, vision_language=True)


JOYCAPTION_PROMPTS = (("caption", "Write a straightforward caption for this image."),
                      ("alt-text", "Write a short description of the image."),
                      ("detailed", "Write a descriptive caption for this image in a formal tone."),
                      ("keywords", "Write a list of Booru-like tags for this image."))

# Native transformers classes only (never remote code); captioner.models.transformers.vlm runs them.
VISION_LANGUAGE = (
    _vision_language("smolvlm", ("idefics3",), "Idefics3ForConditionalGeneration"),  # SmolVLM 256M/500M, Idefics3
    _vision_language("smolvlm2", ("smolvlm",), "SmolVLMForConditionalGeneration"),
    _vision_language("qwen3-vl", ("qwen3_vl",), "Qwen3VLForConditionalGeneration"),
    _vision_language("llava-onevision", ("llava_onevision",), "LlavaOnevisionForConditionalGeneration"),
    _vision_language("internvl", ("internvl",), "InternVLForConditionalGeneration"),
    # JoyCaption (a LLaVA: SigLIP2 and Llama 3.1): its published prompt set, one per style
    _vision_language("llava", ("llava",), "LlavaForConditionalGeneration", style_prompts=JOYCAPTION_PROMPTS),
    _vision_language("gemma3", ("gemma3",), "Gemma3ForConditionalGeneration"),
    # PaliGemma takes task prefixes, not chat: "caption en" and "describe en" (its mix checkpoints' tasks)
    _vision_language("paligemma", ("paligemma",), "PaliGemmaForConditionalGeneration",
                     styles=("caption", "alt-text", "detailed"),
                     style_prompts=(("caption", "caption en"), ("alt-text", "caption en"),
                                    ("detailed", "describe en"))),
)

ARCHITECTURES = {arch.name: arch for arch in (
    Architecture("vit-gpt2", ("vision-encoder-decoder",), "VisionEncoderDecoderModel", None,
                 Decoding(method="beam", beam_size=4, max_length=16, alternatives=3)),  # the original's
    Architecture("blip", ("blip",), "BlipForConditionalGeneration",
                 PromptOption("prefix", example="a photography of"),
                 Decoding(method="beam", beam_size=3, max_length=20, alternatives=2)),  # the BLIP paper's beam 3
    Architecture("git", ("git",), "GitForCausalLM", PromptOption("prefix", example="a photo of"),
                 Decoding(method="beam", beam_size=4, max_length=20, alternatives=3)),  # the GIT paper's beam 4
    Architecture("florence-2", ("florence2",), "Florence2ForConditionalGeneration",
                 PromptOption("task", FLORENCE_TASKS, default="<CAPTION>", example="<DETAILED_CAPTION>"),
                 Decoding(method="beam", beam_size=3, max_length=20, alternatives=2),  # its generation_config's 3
                 not_fine_tuned="Florence-2 is a multi-task model whose captions come from task prompts over a "
                                "577-token image sequence; fine-tuning it on captions alone would erode its other "
                                "tasks, and its 768-pixel inputs make CPU fine-tuning impractical",
                 styles=("caption", "alt-text", "detailed"),
                 style_prompts=(("alt-text", "<DETAILED_CAPTION>"), ("detailed", "<MORE_DETAILED_CAPTION>"))),
    *VISION_LANGUAGE,
)}


def architecture_for_config(config) -> Architecture:
    """The architecture of a transformers configuration (or its ``config.json`` as a dict)."""
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    for architecture in ARCHITECTURES.values():
        if model_type in architecture.model_types:
            return architecture
    supported = ", ".join(sorted(t for a in ARCHITECTURES.values() for t in a.model_types))
    raise ModelError(f"model type {model_type!r} is not an image-to-text architecture captioner supports "
                     f"(supported: {supported})")


def architecture_name(folder: Path) -> str | None:
    """The architecture's short name of a model folder, None when it is not a supported captioner."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        return architecture_for_config(config).name
    except (OSError, ValueError, ModelError):
        return None


def architecture_of(folder: str | os.PathLike) -> Architecture:
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"cannot read {path} ({error}); is {folder} a transformers model folder?") from None
    return architecture_for_config(config)
