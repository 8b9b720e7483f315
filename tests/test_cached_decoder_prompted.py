"""The cached decoder steps of the models that read a prompt with the image (Florence-2's task questions,
BLIP's caption prefix), searched by the one beam search, give the captions, scores and alternatives of transformers' ``generate``
in float32, one image and three at a time, including the tokens Florence-2's generation config forces."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_image_to_text import BLIP_PROMPT, tiny_blip, tiny_florence2, tiny_git  # noqa: E402
from support.tiny_vit_gpt2 import single_thread  # noqa: E402

from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts, caption_batch  # noqa: E402

DECODINGS = {
    "greedy": Decoding(max_length=8),
    "beam": Decoding.beam(3, max_length=8, alternatives=2),
    "beam-no-repeat": Decoding.beam(4, max_length=6, no_repeat_ngram_size=2, length_penalty=0.5, alternatives=3),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def images():
    rng = random.Random(4)
    return [make_picture(rng)[0] for _ in range(3)]


def captioner_of(model, processor) -> ImageToTextCaptioner:
    parts = ModelParts(model, processor.image_processor, processor.tokenizer, processor)
    return ImageToTextCaptioner(parts, BundleInfo(kind="image-to-text", name="tiny"), precision="float32",
                                device="cpu")


@pytest.fixture(scope="module")
def florence():
    """Florence-2 with random, peaked weights; its generation config forces </s> at the length limit."""
    return captioner_of(*tiny_florence2(init=0.3))


@pytest.fixture(scope="module")
def florence_forced_start():
    """The same, with Florence-2's published habit of forcing <s> as the first generated token."""
    model, processor = tiny_florence2(init=0.3)
    model.generation_config.forced_bos_token_id = processor.tokenizer.bos_token_id
    return captioner_of(model, processor)


def assert_cached_equals_generate(captioner, images, decoding: Decoding, prompt: str):
    assert captioner.cached_decoder is not None
    cached = caption_batch(captioner.parts, images, decoding, prompt, captioner.device, captioner.cached_decoder)
    generated = caption_batch(captioner.parts, images, decoding, prompt, captioner.device, None)
    for ours, theirs in zip(cached, generated, strict=True):
        assert ours.text == theirs.text and ours.text
        assert ours.score == pytest.approx(theirs.score, abs=1e-4)
        assert [a.text for a in ours.alternatives] == [a.text for a in theirs.alternatives]
        assert [a.log_prob for a in ours.alternatives] == pytest.approx([a.log_prob for a in theirs.alternatives], abs=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(DECODINGS))
def test_florence2_captions_equal_generate(florence, images, name, batch):
    for prompt in ("<CAPTION>", "<DETAILED_CAPTION>"):
        assert_cached_equals_generate(florence, images[:batch], DECODINGS[name], prompt)


@pytest.mark.parametrize("batch", [1, 3])
def test_florence2_forced_first_token_as_generate(florence_forced_start, images, batch):
    assert_cached_equals_generate(florence_forced_start, images[:batch], DECODINGS["beam"], "<CAPTION>")


@pytest.fixture(scope="module")
def blip():
    return captioner_of(*tiny_blip(text_init=0.3))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_blip_captions_with_a_prefix_equal_generate(blip, images, name, batch):
    assert_cached_equals_generate(blip, images[:batch], DECODINGS[name], BLIP_PROMPT)
    caption = caption_batch(blip.parts, images[:1], DECODINGS[name], BLIP_PROMPT, blip.device, blip.cached_decoder)[0]
    assert caption.text.startswith(BLIP_PROMPT)


@pytest.fixture(scope="module")
def git():
    return captioner_of(*tiny_git(init=0.3))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["greedy", "beam", "beam-no-repeat"])
def test_git_captions_equal_generate(git, images, name, batch):
    """Without a prompt, and (where no repetition rule sees the prefix) with a caption prefix."""
    assert_cached_equals_generate(git, images[:batch], DECODINGS[name], "")
    if name != "beam-no-repeat":
        assert_cached_equals_generate(git, images[:batch], DECODINGS[name], BLIP_PROMPT)
