"""JoyCaption as published: a LLaVA loaded with the native LlavaForConditionalGeneration and LlavaProcessor (no
remote code), its prompt set mapped onto the caption styles, free instructions accepted. The model here is a
tiny random LLaVA built on the same processor path."""

from __future__ import annotations

import pytest
from PIL import Image

from captioner.models.base import CAPTION_STYLES, Decoding
from captioner.models.registry import load_captioner
from captioner.models.transformers.architectures import ARCHITECTURES, JOYCAPTION_PROMPTS
from captioner.models.transformers.pretrained import known_model
from captioner.models.transformers.vlm import instruction_for
from support.tiny_image_to_text import save_tiny


@pytest.fixture(scope="module")
def joycaption(tmp_path_factory):
    return load_captioner(save_tiny("llava", tmp_path_factory.mktemp("llava") / "tiny-joycaption"))


def test_joycaption_loads_natively_and_writes_every_style_with_its_published_prompts(joycaption):
    assert type(joycaption.parts.model).__name__ == "LlavaForConditionalGeneration"
    assert joycaption.parts.architecture.name == "llava" and set(joycaption.styles) == set(CAPTION_STYLES)
    picture = Image.new("RGB", (48, 32), (200, 30, 30))
    for style in CAPTION_STYLES:
        (caption,) = joycaption.caption([picture], Decoding(style=style, max_length=4))
        assert len(caption.text.split()) <= 4 and caption.score is not None
    llava = ARCHITECTURES["llava"]
    assert instruction_for(llava, "keywords", "") == "Write a list of Booru-like tags for this image."
    assert instruction_for(llava, "detailed", "") == dict(JOYCAPTION_PROMPTS)["detailed"]
    assert instruction_for(llava, "caption", "Write a Stable Diffusion prompt for this image.") == \
        "Write a Stable Diffusion prompt for this image."  # a free instruction is taken as it is
    (free,) = joycaption.caption([picture], Decoding(prompt="Write a Stable Diffusion prompt for this image.",
                                                     max_length=3))
    assert len(free.text.split()) <= 3


def test_the_short_name_is_pinned_to_a_public_revision():
    known = known_model("joycaption-beta-one")
    assert known.model_id == "fancyfeast/llama-joycaption-beta-one-hf-llava" and known.architecture == "llava"
    assert len(known.revision) == 40 and known.revision in known.revision_source and "Llama 3.1" in known.licence
