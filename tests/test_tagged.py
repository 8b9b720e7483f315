"""Tags and captions together: --template with {caption}, {tags} and {trigger}, and --tags-from putting a tagger's
tags into a vision-language model's instruction (checked at a real local HTTP endpoint that records what it
was asked), in the caption command and in collection runs."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from captioner.collections.results import read_rows
from captioner.models.remote.registration import add_remote
from captioner.models.remote.settings import RemoteSettings
from captioner.models.tagged import fill_template, instruction_with_tags
from support.cli import assert_clean_failure, run_main
from support.fake_vision_endpoint import MODEL, FakeVisionEndpoint
from support.tiny_tagger import build_tagger


@pytest.fixture(scope="module")
def tagger_folder(tmp_path_factory):
    return build_tagger(tmp_path_factory.mktemp("tagged") / "tiny-wd-tagger")


@pytest.fixture
def red_photo(tmp_path):
    path = tmp_path / "photos" / "red.png"
    path.parent.mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(path)
    return path


def test_a_template_fills_its_fields_and_drops_the_separators_of_an_empty_one():
    assert fill_template("ohwx, {tags}", tags=("red theme", "long hair")) == "ohwx, red theme, long hair"
    assert fill_template("{caption}, {tags}", "A red circle.", ("red theme",)) == "A red circle, red theme"
    assert fill_template("{trigger}, {caption}, {tags}", "a cat", ()) == "a cat"
    assert fill_template("{tags}", tags=("a", "b"), separator=" ") == "a b"
    for bad, fragment in (("{caption} {colour}", "{colour}"), ("plain text", "none of them"), ("{tags", "malformed"),
                          ("{caption:>{tags}}", "without a format"), ("{tags!r}", "without a format")):
        with pytest.raises(ValueError, match=fragment):
            fill_template(bad)


def test_tags_go_in_place_of_their_field_or_after_the_instruction_within_the_prompt_limit():
    assert instruction_with_tags("Caption it; tags: {tags}. Be brief.", ("cat", "sofa")) == \
        "Caption it; tags: cat, sofa. Be brief."
    told = instruction_with_tags("Describe this image in one sentence.", [f"tag number {i}" for i in range(40)])
    assert told.startswith("Describe this image in one sentence. These tags describe it: tag number 0, ")
    assert len(told) <= 200 and told.endswith(".") and "tag number 39" not in told


def test_tags_from_a_tagger_reach_the_models_instruction_and_the_template(tagger_folder, red_photo, tmp_path):
    models = tmp_path / "models"
    with FakeVisionEndpoint() as fake:
        add_remote("vlm", RemoteSettings(api="openai", urls=(fake.url,), model=MODEL, retries=1, timeout_s=10.0),
                   models)
        done = run_main("caption", red_photo, "--model", "vlm", "--models-dir", models, "--tags-from", tagger_folder,
                        "--general-threshold", "0.45", "--template", "{trigger}, {caption}, {tags}",
                        "--trigger", "ohwx", "--json")
        assert done.returncode == 0, done.stderr
        content = fake.requests[-1]["body"]["messages"][0]["content"]
        instruction = next(part["text"] for part in content if part["type"] == "text")
    assert instruction == "Describe this image in one sentence. These tags describe it: red theme, ^_^."
    (entry,) = json.loads(done.stdout)["captions"]
    assert entry["text"] == "ohwx, A red circle, red theme, ^_^"
    assert entry["keywords"] == ["red theme", "^_^"] and entry["rating"]["label"] == "general"
    assert_clean_failure(run_main("caption", red_photo, "--model", tagger_folder, "--template", "{caption}"),
                         "the model is a tagger")
    assert_clean_failure(run_main("caption", red_photo, "--model", tagger_folder, "--tags-from", models / "vlm"),
                         "--tags-from and tags_from name a tagger")


def test_a_collection_writes_each_line_through_the_template(tagger_folder, red_photo, tmp_path):
    out = tmp_path / "results.jsonl"
    done = run_main("collection", red_photo.parent, "--out", out, "--model", tagger_folder,
                    "--template", "ohwx, {tags}", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = read_rows(out)
    assert row.caption == "ohwx, red theme, ^_^, long hair" and row.keywords == ["red theme", "^_^", "long hair"]
    again = ("collection", red_photo.parent, "--out", out, "--model", tagger_folder, "--json")
    assert json.loads(run_main(*again, "--template", "ohwx, {tags}").stdout)["skipped"] == 1  # resumed: done
    for changed in (("--template", "ohwx, {tags}", "--general-threshold", "0.45"), ("--template", "{tags}, ohwx")):
        assert json.loads(run_main(*again, *changed).stdout)["captioned"] == 1  # other choices: captioned anew
    assert [row.caption for row in read_rows(out)] == ["ohwx, red theme, ^_^, long hair", "ohwx, red theme, ^_^",
                                                      "red theme, ^_^, long hair, ohwx"]
    assert read_rows(out)[1].decoding["tagger"]["general_threshold"] == 0.45
    # (the Ray engine's actors remake the same captioner: test_collections_ray.py, in a process of its own)


def test_the_api_takes_tags_from_a_tagger_into_the_instruction_and_the_template(tagging):
    from support.tagging import TAGGER, VLM

    answer = tagging.caption(model=VLM, tags_from=TAGGER, template="{trigger}, {caption}, {tags}", trigger="ohwx")
    assert answer.status_code == 200, answer.get_json()
    assert tagging.instruction() == \
        "Describe this image in one sentence. These tags describe it: red theme, ^_^, long hair."
    body = answer.get_json()
    assert body["caption"] == "ohwx, A red circle, red theme, ^_^, long hair"
    assert body["keywords"] == ["red theme", "^_^", "long hair"]
    assert body["keyword_scores"] == [pytest.approx(0.9997, abs=1e-4), 0.5, pytest.approx(0.4013, abs=1e-4)]
    assert body["rating"] == {"label": "general", "probability": pytest.approx(0.8808, abs=1e-4)}
    tagged = tagging.caption(model=TAGGER, template="ohwx, {tags}").get_json()
    assert tagged["caption"] == "ohwx, red theme, ^_^, long hair" and tagged["keyword_scores"][1] == 0.5
    for fields, fragment in (({"tags_from": "nowhere"}, "tags_from names no loaded tagger: 'nowhere'; loaded "
                                                        f"taggers: {TAGGER}"),
                             ({"tags_from": VLM}, "vlm is a remote model"),
                             ({"template": "{caption} {colour}"}, "not {colour}"),
                             ({"trigger": "ohwx"}, "give a template too"),
                             ({"template": "{tags}", "compare": "all"}, "apply to one model")):
        refused = tagging.caption(model=VLM, **fields)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_parameter"
        assert fragment in refused.get_json()["error"]["message"]


def test_tags_from_reach_a_tiny_local_vision_language_models_instruction_on_the_api(tagging, tmp_path):
    pytest.importorskip("transformers")
    from support.tagging import TAGGER
    from support.tiny_image_to_text import save_tiny

    from captioner.models.registry import load_captioner

    service = tagging.app.extensions["captioner"]
    vlm = service.add_model(load_captioner(save_tiny("idefics3", tmp_path / "tiny-smolvlm")))
    try:
        asked = {"model": vlm.name, "method": "greedy", "max_length": "4"}
        tagged = tagging.caption(**asked, tags_from=TAGGER).get_json()
        told = tagging.caption(**asked, prompt="Describe this image in one sentence. These tags describe it: "
                                              "red theme, ^_^, long hair.").get_json()
        plain = tagging.caption(**asked).get_json()
    finally:
        service.models.pop(vlm.name).batcher.close()
    assert tagged["keywords"] == ["red theme", "^_^", "long hair"] and tagged["keyword_scores"][1] == 0.5
    assert (tagged["caption"], tagged["score"]) == (told["caption"], pytest.approx(told["score"]))  # the same words
    assert tagged["score"] != pytest.approx(plain["score"])  # and not the instruction without the tags
