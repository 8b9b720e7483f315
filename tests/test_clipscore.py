"""CLIPScore (evaluation/clipscore.py) on a tiny random CLIP: the paper's formula, checked against
torchmetrics' independent implementation, the 77-token truncation, and the missing-model message."""

from __future__ import annotations

import pytest
from PIL import Image

from support.cli import assert_clean_failure
from support.tiny_clip import IMAGE_SIZE

CAPTIONS = ["a red circle on a white background", "two blue squares", "a green triangle and a yellow star",
            "three small shapes", "x"]


@pytest.fixture(scope="module")
def pictures():
    """Shapes pictures at the tiny CLIP's input size, so both implementations see the same pixels."""
    import random

    from captioner.data.shapes import make_picture

    rng = random.Random(3)
    return [make_picture(rng)[0].convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE)) for _ in CAPTIONS]


@pytest.fixture(scope="module")
def negative_clip(tmp_path_factory):
    """A tiny CLIP whose cosines are all below 0 (every score clipped)."""
    from support.tiny_clip import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("negative-clip"), seed=0)


@pytest.mark.parametrize("which", ["tiny_clip", "negative_clip"])
def test_clip_score_equals_torchmetrics_after_the_scale_conversion(which, request, pictures):
    """torchmetrics reports 100 * max(cos, 0) and does not add the paper's prompt; ours is 2.5 * max(cos, 0) of
    the prompted caption. Given the prompted caption, the two agree pair by pair, above 0 and clipped."""
    import numpy as np
    import torch
    from torchmetrics.multimodal.clip_score import CLIPScore
    from transformers import CLIPModel, CLIPProcessor

    from captioner.evaluation.clipscore import CAPTION_PROMPT, CLIP_WEIGHT, clip_scorer

    tiny_clip = request.getfixturevalue(which)

    class TensorFeaturesCLIP(CLIPModel):
        """torchmetrics 1.9 expects get_*_features to return tensors, as transformers 4 did; transformers 5
        returns an output whose pooler_output is that same projected embedding (torchmetrics #3407)."""

        def get_image_features(self, *args, **kwargs):
            return super().get_image_features(*args, **kwargs).pooler_output

        def get_text_features(self, *args, **kwargs):
            return super().get_text_features(*args, **kwargs).pooler_output

    metric = CLIPScore(model_name_or_path=lambda: (TensorFeaturesCLIP.from_pretrained(tiny_clip),
                                                   CLIPProcessor.from_pretrained(tiny_clip)))
    ours = clip_scorer(str(tiny_clip)).score(pictures, CAPTIONS)
    theirs = []
    for picture, caption in zip(pictures, CAPTIONS):
        metric.reset()  # one pair per compute: torchmetrics clips the mean of what it was given
        metric.update(torch.from_numpy(np.array(picture)).permute(2, 0, 1), f"{CAPTION_PROMPT} {caption}")
        theirs.append(float(metric.compute()) * CLIP_WEIGHT / 100)
    assert ours == pytest.approx(theirs, abs=1e-5)
    positive = which == "tiny_clip"
    assert all((0 < score < CLIP_WEIGHT) if positive else score == 0 for score in ours), ours


def test_the_score_is_the_clipped_weighted_cosine_and_empty_captions_get_none(tiny_clip, negative_clip, pictures):
    from captioner.evaluation.clipscore import CLIP_WEIGHT, clip_scorer

    for folder in (tiny_clip, negative_clip):
        scorer = clip_scorer(str(folder))
        cosines = scorer.cosines(pictures, CAPTIONS)
        assert scorer.score(pictures, CAPTIONS) == pytest.approx([CLIP_WEIGHT * max(c, 0) for c in cosines])
    scorer = clip_scorer(str(tiny_clip))
    assert scorer.score(pictures[:2], ["", "  "]) == [None, None]
    assert clip_scorer(str(tiny_clip)) is scorer  # loaded once per process


def test_long_captions_are_truncated_to_clips_77_tokens(tiny_clip, pictures):
    """The character tokenizer spends a token per letter, so 130 letters run past 77 tokens: what follows
    them no longer changes the score (the caption is cut, its end marker kept), while a short caption's does."""
    from captioner.evaluation.clipscore import clip_scorer

    scorer = clip_scorer(str(tiny_clip))
    long = "a red circle " * 10
    picture = pictures[:1]
    assert scorer.cosines(picture, [long + "and more"]) == pytest.approx(scorer.cosines(picture, [long + "zz 9"]))
    assert scorer.cosines(picture, ["a red circle and more"]) != pytest.approx(scorer.cosines(picture, ["zz 9"]))


def test_a_missing_clip_model_is_one_line_naming_the_download(runner, demo_bundle, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("CAPTIONER_SCORE_MODEL", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), "red").save(photo)
    result = runner("caption", photo, "--model", demo_bundle, "--score", "clip")
    assert_clean_failure(result, "captioner models download clip-vit-base-patch32")


def test_a_clip_published_as_pytorch_model_bin_is_converted_to_safetensors_once(tiny_clip, pictures, tmp_path):
    """The hub's older CLIP snapshots hold only pytorch_model.bin: the one conversion path makes a safetensors
    copy (read with weights_only), which scores exactly as the original."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from captioner.evaluation.clipscore import load_scorer
    from captioner.models.transformers.hub import convert_to_safetensors, is_model_folder

    pickled = tmp_path / "snapshot"
    shutil.copytree(tiny_clip, pickled, ignore=shutil.ignore_patterns("model.safetensors"))
    torch.save(load_file(tiny_clip / "model.safetensors"), pickled / "pytorch_model.bin")
    assert (pickled / "pytorch_model.bin").is_file() and not is_model_folder(pickled)
    converted = convert_to_safetensors(pickled, tmp_path / "converted")
    assert is_model_folder(converted)
    assert load_scorer(str(converted)).score(pictures, CAPTIONS) == pytest.approx(
        load_scorer(str(tiny_clip)).score(pictures, CAPTIONS), abs=1e-6)


def test_downloading_the_clip_offline_is_one_line_with_what_to_do(runner, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert_clean_failure(runner("models", "download", "clip-vit-base-patch32"), "openai/clip-vit-base-patch32",
                         "HF_HUB_OFFLINE")
