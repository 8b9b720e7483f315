"""CLIPScore on the web: ``score=clip`` in the API, the caption page's badge, and the newest compare report
linked from the models page and served as written (tiny CLIP, the real demo model, a real report)."""

from __future__ import annotations

import io
import re

import pytest

from support.web import shapes_image_bytes

pytest.importorskip("keras")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def reports(photos_for_report, demo_models_dir, tiny_clip, tmp_path_factory):
    """A reports folder holding one real compare report of the demo model."""
    from support.cli import run_main

    folder = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_SCORE_MODEL", str(tiny_clip))
        result = run_main("compare", photos_for_report, "--models", "shapes-demo", "--models-dir", demo_models_dir,
                          "--sample", 3, "--out", folder / "compare-1")
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def photos_for_report(shapes_dataset):
    return shapes_dataset / "Images"


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir, reports):
    app = make_app(demo_models_dir, reports_dir=str(reports))
    yield app
    app.extensions["captioner"].close()


def expected_score(image_bytes: bytes, caption: str, tiny_clip) -> float:
    from captioner.data.images import load_image
    from captioner.evaluation.clipscore import clip_scorer
    from captioner.web.uploads import MAX_SIDE

    return clip_scorer(str(tiny_clip)).score([load_image(image_bytes, max_side=MAX_SIDE)], [caption])[0]


def test_score_clip_adds_each_captions_clip_score(client, shapes_dataset, clip_score_model):
    image = shapes_image_bytes(shapes_dataset, 2)
    answer = client.post("/api/v1/captions", data={"image": (io.BytesIO(image), "s.png"), "score": "clip"}).get_json()
    assert answer["clip_score"] == pytest.approx(expected_score(image, answer["caption"], clip_score_model))
    assert 0 < answer["clip_score"] <= 2.5
    plain = client.post("/api/v1/captions", data={"image": (io.BytesIO(image), "s.png")}).get_json()
    assert "clip_score" not in plain and plain["caption"] == answer["caption"]


def test_a_bad_score_is_400_and_a_missing_clip_model_is_503_naming_the_download(client, shapes_dataset, tmp_path,
                                                                                 monkeypatch):
    from huggingface_hub import constants

    image = shapes_image_bytes(shapes_dataset)
    response = client.post("/api/v1/captions", data={"image": (io.BytesIO(image), "s.png"), "score": "bleu"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_parameter"
    monkeypatch.delenv("CAPTIONER_SCORE_MODEL", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    response = client.post("/api/v1/captions", data={"image": (io.BytesIO(image), "s.png"), "score": "clip"})
    error = response.get_json()["error"]
    assert response.status_code == 503 and error["code"] == "score_unavailable"
    assert "captioner models download clip-vit-base-patch32" in error["message"]


def test_the_caption_page_shows_the_badge_without_javascript(client, shapes_dataset, clip_score_model):
    page = client.get("/caption").get_data(as_text=True)
    assert 'name="score" value="clip"' in page
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    image = shapes_image_bytes(shapes_dataset, 3)
    html = client.post("/caption", data={"csrf_token": token, "image": (io.BytesIO(image), "s.png"),
                                         "score": "clip"}).get_data(as_text=True)
    caption = re.search(r'<p class="caption-text">([^<]+)</p>', html).group(1)
    badge = re.search(r'<p class="clip-score">.*?<span class="clip-score-value">([0-9.]+)</span>', html, re.S)
    assert badge and float(badge.group(1)) == pytest.approx(expected_score(image, caption, clip_score_model), abs=0.005)
    assert "<script>" not in html  # no inline script (CSP)


def test_the_models_page_links_the_newest_report_served_under_a_strict_policy(client, reports):
    page = client.get("/models").get_data(as_text=True)
    assert 'href="/compare-report/"' in page and "shapes-demo on 3 photos" in page
    index = client.get("/compare-report/")
    assert index.status_code == 200 and "Captioners compared on your photos" in index.get_data(as_text=True)
    assert "default-src 'none'" in index.headers["Content-Security-Policy"]
    assert "script-src" not in index.headers["Content-Security-Policy"]
    for name in ("report.css", "scores.png", "thumbs/001.jpg", "summary.json"):
        assert client.get(f"/compare-report/{name}").status_code == 200, name
    (reports / "compare-1" / "secret.txt").write_text("not part of a report")
    for name in ("secret.txt", "../compare-1/index.html", "thumbs/../index.html", "%2e%2e/x"):
        assert client.get(f"/compare-report/{name}").status_code == 404, name


def test_without_a_reports_folder_nothing_is_served(make_app, demo_models_dir):
    app = make_app(demo_models_dir)
    try:
        client = app.test_client()
        assert client.get("/compare-report/").status_code == 404
        assert "/compare-report/" not in client.get("/models").get_data(as_text=True)
    finally:
        app.extensions["captioner"].close()
