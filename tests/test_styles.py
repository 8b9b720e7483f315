"""Caption styles: the alt-text and keywords finishing functions; what each family makes of a style (Florence-2's
tasks, BLIP's caption cut to alt text, a VLM's instruction); refusals that name the models that can; and the
one option everywhere: the command line, the JSON API and models list, the pages, jobs and collection runs
(recorded per row, so resume tells styles apart). Tiny random models, a real app and real result files."""

from __future__ import annotations

import io
import json
import random
import shutil
import time
from pathlib import Path

import pytest

from support.cli import assert_clean_failure, run_main

from captioner.collections.results import EARLIER_FIELDS, open_results, read_rows
from captioner.models.base import ALT_TEXT_CHARACTERS, DETAILED_WORDS, Caption, Decoding, DecodingRequest
from captioner.models.styles import alt_text, check_style, finish, keywords_of


def test_alt_text_drops_the_preamble_and_cuts_on_a_word_boundary():
    assert alt_text("an image of a dog running on the beach") == "A dog running on the beach"
    assert alt_text("A picture of two cats") == "Two cats"
    assert alt_text("photograph showing a red bus") == "A red bus"
    assert alt_text("a dog on the grass") == "A dog on the grass"  # nothing to strip
    long = "a dog " + "running happily along the wide sandy beach " * 6
    cut = alt_text(long)
    assert len(cut) <= ALT_TEXT_CHARACTERS and long.startswith(cut[0].lower() + cut[1:])
    assert long[len(cut)] == " "  # ended between words, not inside one
    assert len(alt_text("x" * 300)) == ALT_TEXT_CHARACTERS  # one endless word is cut where the limit falls


def test_keywords_are_lower_case_trimmed_and_de_duplicated_in_order():
    assert keywords_of("Dog, dog, Grass; SKY.\n- tree\n* Blue sky") == ("dog", "grass", "sky", "tree", "blue sky")
    assert keywords_of("1. Beach 2. Sand") == ("beach", "sand")
    caption = finish(Caption("Red, circle, red", -1.0), "keywords")
    assert caption.keywords == ("red", "circle") and caption.text == "red, circle"
    assert caption.to_dict()["keywords"] == ["red", "circle"]
    assert "keywords" not in Caption("a red circle", -1.0).to_dict()


def test_a_detailed_request_gets_room_for_detail_unless_it_says_how_long():
    default = Decoding(max_length=20)
    assert DecodingRequest(style="detailed").for_default(default).max_length == DETAILED_WORDS
    assert DecodingRequest(style="detailed", max_length=12).for_default(default).max_length == 12


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """A models folder: the shapes demo (Keras, caption only), tiny BLIP, Florence-2 and SmolVLM folders."""
    pytest.importorskip("transformers")
    from support.tiny_image_to_text import save_tiny

    root = tmp_path_factory.mktemp("style-models") / "models"
    return {"blip": save_tiny("blip", root / "tiny-blip", text_init=0.3),
            "florence2": save_tiny("florence2", root / "tiny-florence", init=0.3),
            "idefics3": save_tiny("idefics3", root / "tiny-vlm")}


@pytest.fixture(scope="module")
def picture():
    from captioner.data.shapes import make_picture

    return make_picture(random.Random(9))[0]


def test_each_family_writes_a_style_its_own_way(tiny_models, picture):
    from captioner import load_captioner

    florence, blip, vlm = (load_captioner(tiny_models[kind]) for kind in ("florence2", "blip", "idefics3"))
    words = {"max_length": 8}
    # Florence-2: detailed is its <MORE_DETAILED_CAPTION> task, alt text its <DETAILED_CAPTION> cut to length
    assert (florence.caption([picture], Decoding(style="detailed", **words))[0].text
            == florence.caption([picture], Decoding(prompt="<MORE_DETAILED_CAPTION>", **words))[0].text)
    assert (florence.caption([picture], Decoding(style="alt-text", **words))[0].text
            == alt_text(florence.caption([picture], Decoding(prompt="<DETAILED_CAPTION>", **words))[0].text))
    # BLIP: its caption, as alt text; no keywords, and the refusal names the models that can
    as_alt_text = blip.default_decoding.with_changes(style="alt-text")
    assert blip.caption([picture], as_alt_text)[0].text == alt_text(blip.caption([picture])[0].text)
    with pytest.raises(ValueError, match="tiny-vlm"):
        check_style(blip, "keywords", [blip, florence, vlm])
    with pytest.raises(ValueError, match="cannot write 'keywords'"):
        blip.caption([picture], Decoding(style="keywords"))
    # a VLM: every style, keywords as a list
    caption = vlm.caption([picture], Decoding(style="keywords"))[0]
    assert caption.text == ", ".join(caption.keywords)


def test_the_command_line_refuses_a_style_the_model_cannot_write(demo_bundle, tmp_path, picture):
    image = tmp_path / "p.png"
    picture.save(image)
    assert_clean_failure(run_main("caption", image, "--model", demo_bundle, "--style", "keywords"),
                         "cannot write 'keywords'", "writes: caption")
    unknown = run_main("caption", image, "--model", demo_bundle, "--style", "haiku")  # argparse's usage error
    assert unknown.returncode == 2 and "invalid choice: 'haiku'" in unknown.stderr


@pytest.fixture(scope="module")
def app(make_app, demo_bundle, tiny_models):
    folder = tiny_models["idefics3"].parent
    shutil.copytree(demo_bundle, folder / demo_bundle.name, dirs_exist_ok=True)
    app = make_app(folder, model_names=("shapes-demo", "tiny-vlm"))
    yield app
    app.extensions["captioner"].close()


def wait_done(client, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_api_pages_and_jobs_offer_styles_and_refuse_the_impossible_ones(client, picture):
    models = {m["name"]: m for m in client.get("/api/v1/models").get_json()["models"]}
    assert models["shapes-demo"]["styles"] == ["caption"]
    assert set(models["tiny-vlm"]["styles"]) == {"caption", "alt-text", "detailed", "keywords"}

    refused = client.post("/api/v1/captions", data={"image": (io.BytesIO(png(picture)), "p.png"),
                                                    "model": "shapes-demo", "style": "keywords"})
    assert refused.status_code == 400
    error = refused.get_json()["error"]
    assert error["code"] == "bad_parameter" and "tiny-vlm" in error["message"]
    unknown = client.post("/api/v1/captions", data={"image": (io.BytesIO(png(picture)), "p.png"), "style": "poem"})
    assert unknown.status_code == 400 and "style must be one of" in unknown.get_json()["error"]["message"]

    answer = client.post("/api/v1/captions", data={"image": (io.BytesIO(png(picture)), "p.png"),
                                                   "model": "tiny-vlm", "style": "keywords"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["decoding"]["style"] == "keywords" and body["caption"] == ", ".join(body["keywords"])

    job = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(png(picture)), "p.png")],
                                            "model": "shapes-demo", "style": "detailed"})
    assert job.status_code == 400 and "tiny-vlm" in job.get_json()["error"]["message"]

    made = client.post("/api/v1/jobs", data={"images": [(io.BytesIO(png(picture)), "p.png")],
                                             "model": "tiny-vlm", "style": "keywords"})
    assert made.status_code == 202, made.get_json()
    finished = wait_done(client, made.get_json()["id"])
    (item,) = finished["items"]
    assert finished["decoding"]["style"] == "keywords" and item["caption"] == ", ".join(item["keywords"])

    for page in ("/caption", "/caption-many"):
        html = client.get(page).get_data(as_text=True)
        assert 'name="style"' in html and 'value="keywords"' in html
    assert "Styles" in client.get("/models").get_data(as_text=True)


def test_collection_rows_record_the_style_and_keywords_and_resume_tells_styles_apart(tiny_models, picture,
                                                                                     tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    picture.save(folder / "a.png")
    out = tmp_path / "results.csv"
    model = tiny_models["idefics3"]
    first = run_main("collection", folder, "--out", out, "--model", model, "--style", "keywords", "--json")
    assert first.returncode == 0, first.stderr
    (row,) = read_rows(out)
    assert row.decoding["style"] == "keywords" and row.caption == ", ".join(row.keywords)
    assert json.loads(run_main("collection", folder, "--out", out, "--model", model, "--style", "keywords",
                               "--json").stdout)["skipped"] == 1
    other = run_main("collection", folder, "--out", out, "--model", model, "--json")  # the caption style
    assert json.loads(other.stdout)["captioned"] == 1


def test_a_results_csv_written_before_the_keywords_column_is_read_and_appended_to(tmp_path):
    from captioner.collections.results import ResultRow

    out = tmp_path / "old.csv"
    out.write_text(",".join(EARLIER_FIELDS) + "\n"
                   'a.png,abc,1,1,m,"{""style"": ""caption""}",a cat,-1.0,[],{},\n', encoding="utf-8")
    with open_results(out) as results:
        assert [r.caption for r in results.rows] == ["a cat"] and results.rows[0].keywords == []
        results.append([ResultRow("b.png", "def", 1, 1, "m", {"style": "caption"}, caption="a dog")])
    assert [r.caption for r in read_rows(out)] == ["a cat", "a dog"]
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(EARLIER_FIELDS)
