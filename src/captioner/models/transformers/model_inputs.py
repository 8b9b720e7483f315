"""What a transformers captioner's model reads for a batch of images and one prompt: the processor's pixels,
the prompt's tokens as each architecture takes them (Florence-2's task question, BLIP's and GIT's caption
prefix), how many tokens of a returned sequence were given rather than generated, and the probe input an ONNX
export is checked on. ``parts`` is always a loaded model's
:class:`~captioner.models.transformers.image_to_text.ModelParts`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from PIL import Image


def model_inputs(parts, images: Sequence["Image.Image"], prompt: str, device) -> dict:
    """The tensors ``generate`` reads for a batch of RGB images and one (already checked) prompt."""
    import torch

    name = parts.architecture.name
    if name == "florence-2":  # the processor puts image placeholders, <s>, the task's question and </s> together
        inputs = parts.processor(images=list(images), text=[prompt] * len(images), return_tensors="pt")
        inputs = {key: inputs[key] for key in ("pixel_values", "input_ids", "attention_mask")}
    else:
        inputs = {"pixel_values": parts.image_processor(images=list(images), return_tensors="pt")["pixel_values"]}
    inputs["pixel_values"] = inputs["pixel_values"].to(device, dtype=parts.model.dtype)  # (batch, 3, height, width)
    if prompt and name == "blip":  # [CLS] prompt [SEP]: BLIP's generate swaps [CLS] for its start token, drops [SEP]
        ids = parts.tokenizer(prompt, return_tensors="pt")["input_ids"]  # (1, prompt tokens)
        inputs["input_ids"] = ids.repeat(len(images), 1)  # (batch, prompt tokens)
    if prompt and name == "git":  # the caption continues [CLS] prompt
        ids = [parts.tokenizer.cls_token_id, *parts.tokenizer(prompt, add_special_tokens=False)["input_ids"]]
        inputs["input_ids"] = torch.tensor([ids] * len(images))  # (batch, prompt tokens)
    return {key: value.to(device) for key, value in inputs.items()}


def probe_inputs(parts) -> dict:
    """The model's inputs for two random images with its default prompt (what an ONNX export is checked on)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)) for _ in range(2)]
    if parts.architecture.vision_language:  # the caption style's instruction in the model's chat template
        from captioner.models.transformers import vlm

        instruction = vlm.instruction_for(parts.architecture, "caption", "")
        return vlm.model_inputs(parts.processor, images, instruction, parts.model.dtype, "cpu")
    option = parts.architecture.prompt
    prompt = dict(parts.architecture.style_prompts).get("caption", option.default if option else "")
    return model_inputs(parts, images, prompt, "cpu")


def given_tokens(parts, inputs: dict) -> int:
    """How many tokens at the start of each returned sequence were given, not generated (start token, prompt)."""
    name = parts.architecture.name
    if name in ("blip", "git") and "input_ids" in inputs:
        return inputs["input_ids"].shape[1] - (1 if name == "blip" else 0)  # BLIP drops the prompt's [SEP]
    return 1  # the decoder's start token (encoder-decoders), or BLIP's / GIT's start token
