"""Vision-language models in the image-to-text kind, on tiny random SmolVLM (Idefics3), Qwen3-VL and
LLaVA-OneVision models built from their configs, with tokenizers and chat templates made on the spot: loading
by path, by bundle and as plain folders; batched equals one by one; greedy, beam and seeded sampling under the
word limit; instructions, styles and bad prompts; the image bound and tiling setting. No network."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.cli import assert_clean_failure, run_main  # noqa: E402
from support.tiny_image_to_text import VLM_TYPES, save_tiny  # noqa: E402
from support.tiny_vit_gpt2 import single_thread  # noqa: E402

from captioner import load_captioner  # noqa: E402
from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.registry import plain_folder_kind  # noqa: E402
from captioner.models.transformers.image_to_text import load_model_folder, write_bundle  # noqa: E402
from captioner.models.transformers.vlm import (VisionLanguageSettings, bound_images, instruction_for,  # noqa: E402
                                              model_inputs)

ARCHITECTURE = {"idefics3": "smolvlm", "qwen3_vl": "qwen3-vl", "llava_onevision": "llava-onevision"}
IMAGE_TOKEN = {"idefics3": "<image>", "qwen3_vl": "<|image_pad|>", "llava_onevision": "<image>"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def vlm_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vlm")
    return {kind: save_tiny(kind, root / kind) for kind in VLM_TYPES}


@pytest.fixture(scope="module")
def vlms(vlm_folders):
    return {kind: load_captioner(folder) for kind, folder in vlm_folders.items()}


@pytest.fixture(scope="module")
def images():
    rng = random.Random(5)
    return [make_picture(rng)[0] for _ in range(3)]


def texts(captions):
    return [c.text for c in captions]


@pytest.mark.parametrize("kind", VLM_TYPES)
def test_a_vlm_folder_is_a_plain_image_to_text_folder_and_captions_by_path(vlms, vlm_folders, images, kind):
    assert plain_folder_kind(vlm_folders[kind]) == "image-to-text"
    captioner = vlms[kind]
    assert captioner.architecture == ARCHITECTURE[kind] and captioner.prompt_option.style == "instruction"
    assert set(captioner.styles) == {"caption", "alt-text", "detailed", "keywords"}
    assert not captioner.vision_settings.tiling  # a CPU: tiling off by default
    captions = captioner.caption(images[:2])
    assert len(captions) == 2 and all(c.score < 0 and c.text for c in captions)
    assert all(len(c.text.split()) <= captioner.default_decoding.max_length for c in captions)


@pytest.mark.parametrize("kind", VLM_TYPES)
def test_a_vlm_bundle_loads_by_name_and_captions_as_its_folder_does(vlms, images, kind, tmp_path):
    parts = vlms[kind].parts
    write_bundle(tmp_path / "my-vlm", parts, BundleInfo(kind="image-to-text", name="my-vlm", dataset="pretrained"))
    loaded = load_captioner("my-vlm", tmp_path)
    assert loaded.name == "my-vlm" and loaded.architecture == ARCHITECTURE[kind]
    decoding = Decoding(max_length=8)  # a bundle without settings decodes as bundles do by default
    assert texts(loaded.caption(images[:1], decoding)) == texts(vlms[kind].caption(images[:1], decoding))


@pytest.mark.parametrize("kind", VLM_TYPES)
def test_batched_equals_one_by_one_for_greedy_and_beam(vlms, images, kind):
    captioner = vlms[kind]
    for decoding in (Decoding(max_length=6), Decoding.beam(3, max_length=5, alternatives=2)):
        together = captioner.caption(images, decoding)
        alone = [captioner.caption([image], decoding)[0] for image in images]
        assert texts(together) == texts(alone)
        assert [c.score for c in together] == pytest.approx([c.score for c in alone], abs=1e-3)
        if decoding.method == "beam":
            assert all(c.text not in [a.text for a in c.alternatives] for c in together)


def test_word_limit_and_seeded_sampling(vlms, images):
    captioner = vlms["qwen3_vl"]
    short = captioner.caption(images, Decoding(max_length=2))
    assert all(1 <= len(c.text.split()) <= 2 for c in short)
    sampled = Decoding(method="sample", seed=11, temperature=1.5, max_length=6)
    first, again = captioner.caption(images, sampled), captioner.caption(images, sampled)
    assert texts(first) == texts(again)  # the same seed, the same captions
    assert texts(first) == [captioner.caption([image], sampled)[0].text for image in images]  # not tied to a batch
    others = [texts(captioner.caption(images, sampled.with_changes(seed=seed))) for seed in (1, 2, 3)]
    assert any(other != texts(first) for other in others)


def test_the_prompt_is_the_instruction_and_each_style_has_its_own(vlms, images):
    captioner = vlms["llava_onevision"]
    inputs = {}
    for name, decoding in {"caption": Decoding(), "detailed": Decoding(style="detailed"),
                           "free": Decoding(prompt="Name the colours.")}.items():
        instruction = instruction_for(captioner.parts.architecture, decoding.style, decoding.prompt)
        inputs[name] = model_inputs(captioner.parts.processor, images[:1], instruction, torch.float32, "cpu")
        text = captioner.tokenizer.decode(inputs[name]["input_ids"][0])
        assert instruction in text and text.rstrip().endswith("assistant")  # the chat template put it there
    assert inputs["caption"]["input_ids"].tolist() != inputs["detailed"]["input_ids"].tolist()
    assert captioner.caption(images[:1], Decoding(prompt="Name the colours."))[0].text


@pytest.mark.parametrize("kind", VLM_TYPES)
def test_a_prompt_holding_the_models_special_tokens_is_refused_clearly(vlms, vlm_folders, images, kind, tmp_path):
    bad = f"{IMAGE_TOKEN[kind]} what is this"
    with pytest.raises(ValueError, match="special tokens"):
        vlms[kind].caption(images[:1], Decoding(prompt=bad))
    if kind == "idefics3":
        picture = tmp_path / "p.png"
        images[0].save(picture)
        assert_clean_failure(run_main("caption", picture, "--model", vlm_folders[kind], "--prompt", bad),
                             "special tokens")


def test_keywords_and_alt_text_styles_on_the_command_line(vlm_folders, images, tmp_path):
    picture = tmp_path / "p.png"
    images[0].save(picture)
    result = run_main("caption", picture, "--model", vlm_folders["idefics3"], "--style", "keywords", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["decoding"]["style"] == "keywords"
    keywords = answer["captions"][0].get("keywords", [])
    assert keywords == [k.lower() for k in keywords] and len(set(keywords)) == len(keywords)
    assert answer["captions"][0]["text"] == ", ".join(keywords)
    result = run_main("caption", picture, "--model", vlm_folders["idefics3"], "--style", "alt-text", "--json")
    assert len(json.loads(result.stdout)["captions"][0]["text"]) <= 125


def test_tiling_and_the_image_bound_follow_the_setting(vlm_folders, images, monkeypatch):
    picture = images[0].resize((160, 96))
    tiles = {}
    for tiling in (False, True):
        parts = load_model_folder(vlm_folders["idefics3"])
        bound_images(parts.model, parts.processor, "smolvlm", VisionLanguageSettings(tiling=tiling, image_size=64))
        tiles[tiling] = model_inputs(parts.processor, [picture], "Describe.", torch.float32, "cpu")["pixel_values"]
    assert tiles[False].shape[1] == 1 and tiles[True].shape[1] > 1  # (images, tiles, 3, h, w)
    sizes = {}
    for side in (64, 128):
        parts = load_model_folder(vlm_folders["qwen3_vl"])
        bound_images(parts.model, parts.processor, "qwen3-vl", VisionLanguageSettings(image_size=side))
        sizes[side] = model_inputs(parts.processor, [picture], "Describe.", torch.float32, "cpu")["pixel_values"]
    assert sizes[64].shape[0] < sizes[128].shape[0]  # fewer patches under the smaller bound
    monkeypatch.setenv("CAPTIONER_VLM_TILING", "on")
    assert VisionLanguageSettings.for_device("cpu").tiling
    monkeypatch.setenv("CAPTIONER_VLM_TILING", "sometimes")
    with pytest.raises(ValueError, match="CAPTIONER_VLM_TILING"):
        VisionLanguageSettings.for_device("cpu")


def test_the_caption_ends_where_the_assistants_turn_ends(vlms):
    from captioner.models.transformers.generation import end_token

    parts = vlms["qwen3_vl"].parts
    turn_end = parts.tokenizer.convert_tokens_to_ids("<|im_end|>")
    listed = parts.model.generation_config.eos_token_id
    try:  # as Gemma 3 lists its plain end token before the end of a turn
        parts.model.generation_config.eos_token_id = [parts.tokenizer.pad_token_id, turn_end]
        assert end_token(parts) == turn_end
    finally:
        parts.model.generation_config.eos_token_id = listed


def test_paligemma_takes_task_prefixes_not_a_chat(images, tmp_path):
    captioner = load_captioner(save_tiny("paligemma", tmp_path / "pali"))
    assert captioner.architecture == "paligemma" and set(captioner.styles) == {"caption", "alt-text", "detailed"}
    inputs = model_inputs(captioner.parts.processor, images[:1], "caption en", torch.float32, "cpu")
    assert captioner.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=True).strip() == "caption en"
    decoding = Decoding(max_length=5)
    assert texts(captioner.caption(images, decoding)) == [captioner.caption([i], decoding)[0].text for i in images]
    with pytest.raises(ValueError, match="cannot write 'keywords'"):
        captioner.caption(images[:1], Decoding(style="keywords"))
