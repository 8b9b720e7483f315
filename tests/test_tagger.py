"""The tagger kind: WD taggers as published (model.onnx + selected_tags.csv), run by ONNX Runtime, their tags the
keywords style in every front end. The tiny tagger (tests/support/tiny_tagger.py) maps an image's colour means
to known probabilities, so pre-processing, thresholds and ordering are checked against exact numbers."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from captioner.errors import ModelError
from captioner.models.registry import load_captioner
from captioner.models.taggers import with_settings
from captioner.models.taggers.wd import prepare
from support.cli import assert_clean_failure, run_main
from support.tiny_tagger import TAGS, build_tagger, expected, sigmoid


@pytest.fixture(scope="session")
def tagger_folder(tmp_path_factory):
    return build_tagger(tmp_path_factory.mktemp("taggers") / "tiny-wd-tagger")


@pytest.fixture(scope="session")
def tagger(tagger_folder):
    return load_captioner(tagger_folder)


RED, BLUE = Image.new("RGB", (40, 40), (255, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 255))


def test_a_published_tagger_folder_loads_as_a_tagger_and_answers_in_the_keywords_style(tagger):
    assert tagger.kind == "tagger" and tagger.styles == ("keywords",) and tagger.input.size == 32
    (red,) = tagger.caption([RED])
    probabilities = expected((0, 0, 1))  # BGR means of a red picture: only right when fed BGR at 0-255
    assert red.keywords == ("red theme", "^_^", "long hair")  # general tags at 0.35 or above, most probable first
    assert red.keyword_scores == pytest.approx([probabilities["red_theme"], 0.5, sigmoid(-0.4)], abs=1e-5)
    assert red.text == "red theme, ^_^, long hair" and red.score is None
    assert red.rating == ("general", pytest.approx(sigmoid(2.0), abs=1e-5))  # apart from the tags
    assert "hatsune miku" not in red.keywords  # 0.731 is below the character threshold 0.85
    answer = red.to_dict()
    assert answer["keywords"] == list(red.keywords) and len(answer["keyword_scores"]) == 3
    assert answer["rating"]["label"] == "general"
    (blue,) = tagger.caption([BLUE])
    assert blue.keywords[0] == "blue theme" and "red theme" not in blue.keywords


def test_an_image_is_padded_to_a_square_on_white_and_resized_to_the_graphs_input(tagger):
    tall_red = Image.new("RGB", (10, 40), (255, 0, 0))  # a quarter of the square red, the rest white padding
    pixels = prepare(tall_red, 32)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.float32
    assert tuple(pixels[16, 0]) == (255, 255, 255) and tuple(pixels[16, 16]) == (0, 0, 255)  # BGR
    means = pixels.mean(axis=(0, 1)) / 255
    assert means == pytest.approx((0.75, 0.75, 1.0), abs=0.03)
    tags = tagger.tags([tall_red])[0]
    found = dict(zip(tags.names, tags.scores))
    assert found["white background"] == pytest.approx(expected((0.75, 0.75, 1.0))["white_background"], abs=0.03)
    transparent = Image.new("RGBA", (32, 32), (0, 0, 0, 0)).convert("RGB")
    assert prepare(Image.new("RGBA", (32, 32), (0, 0, 0, 0)), 32).min() == 255  # transparency flattened on white
    assert prepare(transparent, 32).max() == 0


def test_thresholds_undesired_and_always_first_tags_and_underscores(tagger):
    strict = with_settings(tagger, general_threshold=0.45, character_threshold=0.7)
    (red,) = strict.caption([RED])
    assert red.keywords == ("hatsune miku", "red theme", "^_^")  # characters first; long hair (0.401) dropped
    chosen = with_settings(tagger, undesired_tags=("^_^",), always_first_tags=("long hair", "nothing_here"),
                           keep_underscores=True)
    assert chosen.caption([RED])[0].keywords == ("long_hair", "red_theme")
    assert tagger.caption([RED])[0].keywords[0] == "red theme"  # the loaded tagger keeps its own settings
    with pytest.raises(ValueError, match="between 0 and 1"):
        with_settings(tagger, general_threshold=1.5)


def test_batched_tagging_equals_one_image_at_a_time_and_a_channels_first_graph_agrees(tagger, tmp_path):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (int(rng.integers(20, 60)), int(rng.integers(20, 60)), 3),
                                           dtype=np.uint8)) for _ in range(11)]
    batched = with_settings(tagger, batch_size=4).probabilities(images)
    alone = [with_settings(tagger, batch_size=1).probabilities([image])[0] for image in images]
    np.testing.assert_allclose(np.stack(batched), np.stack(alone), atol=1e-6)
    channels_first = load_captioner(build_tagger(tmp_path / "nchw", channels_last=False))
    assert channels_first.input.channels_last is False
    np.testing.assert_allclose(np.stack(channels_first.probabilities(images)), np.stack(batched), atol=1e-6)


def test_a_missing_or_malformed_tag_list_or_a_graph_that_does_not_match_it_is_one_clear_error(tagger_folder,
                                                                                              tmp_path):
    missing = tmp_path / "missing"
    missing.mkdir()
    shutil.copy(tagger_folder / "model.onnx", missing / "model.onnx")
    with pytest.raises(ModelError, match="has no selected_tags.csv"):
        load_captioner(missing)
    header = build_tagger(tmp_path / "header")
    (header / "selected_tags.csv").write_text("id,tag\n1,red\n", encoding="utf-8")
    with pytest.raises(ModelError, match="first line must be tag_id,name,category,count"):
        load_captioner(header)
    category = build_tagger(tmp_path / "category")
    rows = (category / "selected_tags.csv").read_text(encoding="utf-8").splitlines()
    (category / "selected_tags.csv").write_text("\n".join([*rows[:3], "7,odd,general,1", *rows[3:]]),
                                                encoding="utf-8")
    with pytest.raises(ModelError, match="line 4"):
        load_captioner(category)
    wider = build_tagger(tmp_path / "wider", graph_tags=len(TAGS) + 2)
    with pytest.raises(ModelError, match=f"gives {len(TAGS) + 2} probabilities per image but .* lists {len(TAGS)}"):
        load_captioner(wider)
    image = tmp_path / "red.png"
    RED.save(image)
    assert_clean_failure(run_main("caption", image, "--model", wider), "probabilities per image")
    assert_clean_failure(run_main("caption", image, "--model", header), "tag_id,name,category,count")


def test_the_caption_command_and_collections_write_tags_with_their_probabilities(tagger_folder, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    RED.save(photos / "red.png")
    BLUE.save(photos / "blue.jpg")
    done = run_main("caption", photos / "red.png", "--model", tagger_folder, "--general-threshold", "0.45",
                    "--character-threshold", "0.7", "--undesired-tags", "red_theme", "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)["captions"]
    assert entry["keywords"] == ["hatsune miku", "^_^"] and entry["keyword_scores"][0] == pytest.approx(0.7311)
    assert entry["rating"] == {"label": "general", "probability": pytest.approx(0.8808)}
    out = tmp_path / "results.jsonl"
    collected = run_main("collection", photos, "--out", out, "--model", tagger_folder, "--metadata", "sidecar",
                         "--write", "keywords", "--json")
    assert collected.returncode == 0, collected.stderr
    rows = {json.loads(line)["path"].rsplit("/", 1)[-1]: json.loads(line) for line in out.read_text().splitlines()}
    assert rows["red.png"]["keywords"] == ["red theme", "^_^", "long hair"]
    assert "red theme" in (photos / "red.png.xmp").read_text(encoding="utf-8")  # dc:subject in the sidecar
    vit = run_main("caption", photos / "red.png", "--model", tagger_folder, "--style", "caption")
    assert_clean_failure(vit, "cannot write 'caption'")


def test_the_api_serves_a_tagger_with_each_tags_probability(make_app, tagger_folder, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copytree(tagger_folder, models / "tiny-wd-tagger")
    client = make_app(models).test_client()
    buffer = io.BytesIO()
    RED.save(buffer, format="PNG")
    answer = client.post("/api/v1/captions", data={"image": (io.BytesIO(buffer.getvalue()), "red.png")})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["kind"] == "tagger" and body["keywords"] == ["red theme", "^_^", "long hair"]
    assert body["keyword_scores"][1] == pytest.approx(0.5) and body["rating"]["label"] == "general"
    assert body["caption"] == "red theme, ^_^, long hair"


def test_a_short_name_loads_its_pinned_revision_from_the_hub_cache_and_offline_says_how_to_get_it(
        tagger_folder, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from captioner.models.taggers.pretrained import KNOWN_TAGGERS

    known = KNOWN_TAGGERS["wd-vit-tagger-v3"]
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    image = tmp_path / "red.png"
    RED.save(image)
    assert_clean_failure(run_main("caption", image, "--model", "wd-vit-tagger-v3"),
                         "captioner models download wd-vit-tagger-v3")
    snapshot = tmp_path / "hub" / "models--SmilingWolf--wd-vit-tagger-v3" / "snapshots" / known.revision
    shutil.copytree(tagger_folder, snapshot)  # the hub cache's layout at the pinned commit
    loaded = load_captioner("wd-vit-tagger-v3")
    assert loaded.kind == "tagger" and loaded.name == "wd-vit-tagger-v3" and loaded.folder == snapshot
    assert loaded.caption([RED])[0].keywords[0] == "red theme"
    assert known.revision in known.revision_source and known.licence == "Apache-2.0"
