"""Vision-language models (VLMs) in the image-to-text kind: SmolVLM, Qwen3-VL, LLaVA-OneVision, InternVL,
Gemma 3 and PaliGemma, through their native transformers classes (never remote code).

Why they need a module of their own: a VLM is a chat model. It reads an instruction in its own chat template
around image placeholder tokens, and answers after it. So the caption is what follows the prompt, the
instruction comes from the caption style (:data:`captioner.models.styles.INSTRUCTIONS`) unless the user gives
one (``--prompt``), and each model's processor (its chat template, its image tokens) builds the input.

Images are bounded: :class:`VisionLanguageSettings` caps the pixels a model sees and keeps tiling (SmolVLM's
image splitting, LLaVA-OneVision's any-resolution grid, InternVL's patches, Gemma 3's pan-and-scan) off on a
CPU, where every tile costs as much as the image again; ``CAPTIONER_VLM_TILING`` and
``CAPTIONER_VLM_IMAGE_SIZE`` change both. Only the image half of each processor is built
(:func:`images_only`), so no video processor (and no torchvision) is needed.

Decoding goes through the one search over a cached step where the language model is a Llama or Qwen2 stack
(SmolVLM, LLaVA and JoyCaption, LLaVA-OneVision: :mod:`captioner.models.transformers.vlm_decoder`), with the
prompt's keys and values computed once per image and shared by its beams, when the step runs in ONNX Runtime
or the search is a beam search (:func:`searched`).
Elsewhere (Qwen3-VL's rotary positions over three axes, Gemma's, a padded batch, the repetition rules) it goes
through ``generate``, with the same :class:`~captioner.models.transformers.word_limit.WordLimit` and scoring.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from captioner import environment
from captioner.models.base import Caption, Decoding
from captioner.models.styles import INSTRUCTIONS

if TYPE_CHECKING:
    from PIL import Image

# The processor class of each VLM architecture (transformers names).
PROCESSORS = {"smolvlm": "Idefics3Processor", "smolvlm2": "SmolVLMProcessor", "qwen3-vl": "Qwen3VLProcessor",
              "llava-onevision": "LlavaOnevisionProcessor", "internvl": "InternVLProcessor",
              "gemma3": "Gemma3Processor", "paligemma": "PaliGemmaProcessor", "llava": "LlavaProcessor"}
DEFAULT_IMAGE_SIZE = 512  # longest image side (Qwen3-VL: the square's pixels) a VLM sees by default


@dataclass(frozen=True)
class VisionLanguageSettings:
    """How big an image a VLM sees."""

    tiling: bool = False  # split large images into tiles besides the whole (off by default on a CPU)
    image_size: int = DEFAULT_IMAGE_SIZE  # bound in pixels: the longest side, or for Qwen3-VL a square's area

    def __post_init__(self) -> None:
        if not 64 <= self.image_size <= 4096:
            raise ValueError(f"the VLM image size must be between 64 and 4096 pixels, not {self.image_size}")

    @classmethod
    def for_device(cls, device: str) -> "VisionLanguageSettings":
        """The environment's choice (CAPTIONER_VLM_TILING, CAPTIONER_VLM_IMAGE_SIZE); tiling defaults to on
        for a GPU and off for a CPU."""
        env = environment.current()
        tiling = env.vlm_tiling.lower() if env.vlm_tiling else "auto"
        if tiling not in ("auto", "on", "off"):
            raise ValueError(f"CAPTIONER_VLM_TILING must be auto, on or off, not {env.vlm_tiling!r}")
        on = not str(device).startswith("cpu") if tiling == "auto" else tiling == "on"
        return cls(tiling=on, image_size=env.vlm_image_size or DEFAULT_IMAGE_SIZE)


def images_only(processor_class):
    """``processor_class`` without its video processor (which needs torchvision), else unchanged.

    transformers builds a processor's parts from its ``__init__`` signature, so the subclass has the same
    signature less ``video_processor``, and passes None for it.
    """
    parameters = inspect.signature(processor_class.__init__).parameters
    if "video_processor" not in parameters:
        return processor_class
    kept = [p for name, p in parameters.items()
            if name not in ("self", "video_processor") and p.kind is p.POSITIONAL_OR_KEYWORD]
    header = ", ".join(["self", *(f"{p.name}={None if p.default is p.empty else p.default!r}" for p in kept),
                        "**kwargs"])
    parts = [p.name for p in kept if p.name in ("image_processor", "tokenizer")]
    rest = [f"{p.name}={p.name}" for p in kept if p.name not in ("image_processor", "tokenizer")]
    namespace = {"parent": processor_class}
    exec(f"def __init__({header}):\n    parent.__init__(self, {', '.join([*parts, 'None', *rest, '**kwargs'])})\n",
         namespace)
    return type(processor_class.__name__, (processor_class,), {"__init__": namespace["__init__"],
                                                               "__module__": processor_class.__module__})


def load_processor(folder: str | Path, architecture_name: str):
    """The processor (chat template, image processor with the PIL backend, tokenizer) of a VLM folder."""
    import transformers

    processor_class = images_only(getattr(transformers, PROCESSORS[architecture_name]))
    processor = processor_class.from_pretrained(folder, backend="pil")
    processor.tokenizer.padding_side = "left"  # answers are generated after the prompt: pad before it
    return processor


def bound_images(model, processor, architecture_name: str, settings: VisionLanguageSettings) -> None:
    """Apply ``settings`` to a loaded model's image processor (and LLaVA-OneVision's grid, which its model reads
    too): the most pixels it sees and whether it tiles."""
    images = processor.image_processor
    side = settings.image_size
    if architecture_name in ("smolvlm", "smolvlm2"):
        images.do_image_splitting = settings.tiling
        tile = images.max_image_size["longest_edge"]
        images.size = {"longest_edge": max(tile, -(-side // tile) * tile) if settings.tiling else tile}
    elif architecture_name == "qwen3-vl":
        area = side * side
        images.size = {"shortest_edge": min(images.size.get("shortest_edge", area), area), "longest_edge": area}
        for name, value in (("max_pixels", area), ("min_pixels", images.size["shortest_edge"])):
            if hasattr(images, name):
                setattr(images, name, value)
    elif architecture_name == "llava-onevision" and not settings.tiling:
        base = [[images.size["height"], images.size["width"]]]  # the base resolution only: no any-res grid
        images.image_grid_pinpoints = base
        model.config.image_grid_pinpoints = base
    elif architecture_name == "internvl":
        images.crop_to_patches = settings.tiling
    elif architecture_name == "gemma3":
        images.do_pan_and_scan = settings.tiling


def instruction_for(architecture, style: str, prompt: str) -> str:
    """What the model is asked: the user's prompt, else the style's own prompt or instruction."""
    return prompt or dict(architecture.style_prompts).get(style) or INSTRUCTIONS[style]


def check_instruction(tokenizer, instruction: str) -> str:
    """ValueError for an instruction holding the model's special tokens (image placeholders, chat markers):
    they would break the prompt the chat template builds."""
    specials = [token for token in tokenizer.all_special_tokens if len(token) > 1 and token in instruction]
    extra = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials += [t.content for t in extra.values() if getattr(t, "special", False) and len(t.content) > 1
                 and t.content in instruction and t.content not in specials]
    if specials:
        raise ValueError(f"the prompt must not hold the model's special tokens ({', '.join(sorted(specials)[:3])}); "
                         "write the instruction in plain words")
    return instruction


def model_inputs(processor, images: Sequence["Image.Image"], instruction: str, dtype, device) -> dict:
    """The tensors ``generate`` reads: each image with the instruction in the model's chat template (or, for a
    model without one, PaliGemma, the image placeholder and the instruction as its task prefix)."""
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
    else:  # the image placeholder first, then the task (PaliGemma's prompt format)
        text = getattr(processor, "image_token", "<image>") + instruction
    inputs = processor(text=[text] * len(images), images=[[image] for image in images], return_tensors="pt",
                       padding=True)
    inputs = {key: value.to(device) for key, value in inputs.items()}
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)  # (images, [tiles,] 3, height, width) or patches
    return inputs


def caption_batch(parts, images: Sequence["Image.Image"], decoding: Decoding, instruction: str,
                  device, cached_decoder=None) -> list[Caption]:
    """One batch of RGB images into Captions: through ``cached_decoder`` (the one search over the prompt's
    cache, :mod:`captioner.models.transformers.vlm_decoder`) where it reads this batch, else ``generate``;
    sampling draws as the other architectures do (:mod:`captioner.models.transformers.sampling`), each image's
    samples being rows of their own."""
    import torch

    from captioner.models.transformers.generation import (end_token, generation_arguments, samples_per_image,
                                                          sequence_log_probs, word_limit)
    from captioner.models.transformers.vlm_decoder import reads_batch

    per_image = samples_per_image(decoding)
    with torch.inference_mode():
        if cached_decoder is not None and searched(cached_decoder, decoding):
            inputs = model_inputs(parts.processor, images, instruction, parts.model.dtype, device)
            if reads_batch(inputs):
                return cached_captions(parts, cached_decoder, inputs, decoding, per_image, device)
        rows = [image for image in images for _ in range(per_image)] if decoding.method == "sample" else list(images)
        inputs = model_inputs(parts.processor, rows, instruction, parts.model.dtype, device)
        given = inputs["input_ids"].shape[1]  # (rows, prompt tokens): the prompt is not generated
        end = end_token(parts)
        limit = word_limit(parts, decoding, "", given, device)
        arguments = generation_arguments(decoding, limit, len(images))
        arguments.update(eos_token_id=end, pad_token_id=parts.tokenizer.pad_token_id)
        output = parts.model.generate(**inputs, **arguments)
        scores = sequence_log_probs(output, end, given).tolist()  # (rows,)
    texts = [" ".join(t.split()) for t in parts.tokenizer.batch_decode(output.sequences[:, given:],
                                                                       skip_special_tokens=True)]
    return [Caption.from_ranked([(texts[r], scores[r]) for r in range(i * per_image, (i + 1) * per_image)],
                                decoding)
            for i in range(len(images))]


def searched(decoder, decoding: Decoding) -> bool:
    """Whether a batch goes through the search over ``decoder``: where it gives ``generate``'s captions
    (:func:`searchable`) and pays. In ONNX Runtime it always does; in PyTorch only for beam search, whose beams
    share the prompt's cache: greedy search and sampling copy no cache, and ``generate`` ran them 3 to 8% faster
    than the PyTorch step (SmolVLM-256M, benchmarks/bench_onnx_runtime.py)."""
    in_onnx = getattr(decoder, "runtime", "torch") == "onnx"  # onnx_step.OnnxImageDecoder
    return searchable(decoding) and (in_onnx or decoding.method == "beam")


def searchable(decoding: Decoding) -> bool:
    """Whether the search gives ``generate``'s captions: ``generate``'s repetition rules also count the
    prompt's tokens, which the search does not see."""
    return not decoding.no_repeat_ngram_size and decoding.repetition_penalty == 1.0


def cached_captions(parts, decoder, inputs: dict, decoding: Decoding, returned: int, device) -> list[Caption]:
    """The batch's captions through the search over ``decoder``: the word limit as ``generate`` would get it,
    counting from the first generated token."""
    import copy

    from captioner.models.transformers.cached_decoder import captions_of, decode_state
    from captioner.models.transformers.generation import word_limit

    limit = copy.copy(word_limit(parts, decoding, "", inputs["input_ids"].shape[1], device))
    limit.prompt_length = 1  # the search's histories hold its start token, then what it generated
    found = decode_state(decoder, decoder.encode_prompt(inputs), decoding, limit)
    return captions_of(found, parts.tokenizer, decoding, returned)
