"""`captioner compare`: the demo shapes model and a tiny ViT-GPT2 compared on a folder of photos, scored by a
tiny CLIP; the report folder (HTML, table, plot) checked against what the models wrote."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from support.cli import assert_clean_failure, run_main

pytest.importorskip("keras")
pytest.importorskip("transformers")

PHOTOS = 5


@pytest.fixture(scope="module")
def models(demo_bundle, tmp_path_factory) -> Path:
    from support.web import tiny_vit_bundle

    folder = tmp_path_factory.mktemp("compare-models")
    shutil.copytree(demo_bundle, folder / demo_bundle.name)
    tiny_vit_bundle(folder)
    return folder


@pytest.fixture(scope="module")
def photos(shapes_dataset, tmp_path_factory) -> Path:
    """Six photos (one without a suffix, told by its content), a note and a damaged 'photo'."""
    folder = tmp_path_factory.mktemp("compare") / "photos"
    (folder / "trip").mkdir(parents=True)
    for picture in sorted((shapes_dataset / "Images").iterdir())[:6]:
        shutil.copy(picture, folder / "trip" / picture.name)
    shutil.move(next((folder / "trip").iterdir()), folder / "IMG_0001")
    (folder / "notes.txt").write_text("not a photo\n")
    (folder / "broken.jpg").write_text("not a jpeg\n")
    return folder


@pytest.fixture(scope="module")
def report(photos, models, tiny_clip, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reports") / "first"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_SCORE_MODEL", str(tiny_clip))
        result = run_main("compare", photos, "--models", "shapes-demo,vit-tiny", "--models-dir", models,
                          "--sample", PHOTOS, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def test_the_report_holds_every_caption_with_its_score_and_the_table_follows_from_them(report):
    out, printed = report
    assert sorted(p.name for p in out.iterdir()) == ["captions.jsonl", "index.html", "report.css", "scores.png",
                                                     "summary.csv", "summary.json", "thumbs"]
    lines = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 * PHOTOS and {line["model"] for line in lines} == {"shapes-demo", "vit-tiny"}
    assert not any(Path(line["photo"]).name in ("notes.txt", "broken.jpg") for line in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"] == printed["models"] and summary["photos"] == PHOTOS
    for row in summary["models"]:
        mine = [line for line in lines if line["model"] == row["model"]]
        scores = [line["clip_score"] for line in mine]
        assert row["mean_clip_score"] == pytest.approx(statistics.fmean(scores))
        assert row["clip_score_spread"] == pytest.approx(statistics.pstdev(scores))
        assert row["distinct_share"] == pytest.approx(len({line["caption"] for line in mine}) / PHOTOS)
        assert row["refusals"] == 0 and row["median_latency_ms"] > 0
    html = (out / "index.html").read_text()
    from html import escape

    for line in lines:
        assert escape(line["caption"]) in html and f"{line['clip_score']:.3f}" in html
    assert "<script" not in html and "http" not in html  # self-contained: nothing from elsewhere
    assert len(list((out / "thumbs").glob("*.jpg"))) == PHOTOS
    from PIL import Image

    with Image.open(out / "scores.png") as plot:
        assert plot.format == "PNG" and plot.width > 400
    assert (out / "summary.csv").read_text().splitlines()[0].startswith("model,mean_clip_score,")


def test_a_model_that_cannot_write_the_style_counts_as_refusing_every_photo(photos, models, clip_score_model,
                                                                           tmp_path):
    from captioner.models.base import styles_of
    from captioner.models.registry import load_captioner

    out = tmp_path / "keywords"
    result = run_main("compare", photos, "--models", "shapes-demo,vit-tiny", "--models-dir", models,
                      "--sample", 2, "--style", "keywords", "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["model"]: row for row in json.loads(result.stdout)["models"]}
    offered = {name: "keywords" in styles_of(load_captioner(name, models)) for name in rows}
    assert not all(offered.values()), "every model now writes keywords: pick a style one of them refuses"
    for name, row in rows.items():
        assert row["refusals"] == (0 if offered[name] else 2)
        assert (row["mean_clip_score"] is None) == (not offered[name])
    assert "refused" in (out / "index.html").read_text()


def test_bad_input_is_one_line_and_writes_nothing(photos, models, tmp_path, clip_score_model):
    out = tmp_path / "report"
    assert_clean_failure(run_main("compare", tmp_path / "nowhere", "--models", "shapes-demo", "--out", out),
                         "no such file or folder")
    assert_clean_failure(run_main("compare", photos, "--models", "shapes-demo,no-such-model", "--models-dir", models,
                                  "--sample", 1, "--out", out), "no-such-model")
    (tmp_path / "empty").mkdir()
    assert_clean_failure(run_main("compare", tmp_path / "empty", "--models", "shapes-demo", "--out", out),
                         "no images")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]
