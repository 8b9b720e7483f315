"""Evaluation results and their report: metrics.json, predictions.jsonl, report.md and the results figure,
for captions from a predictions file and for a real trained shapes captioner."""

from __future__ import annotations

import json

import pytest

from captioner.data.prepared import PreparedData
from captioner.errors import DataError
from captioner.evaluation import (METRIC_KEYS, evaluate_predictions, read_predictions, results_figure, text_table,
                                  write_report)
from captioner.evaluation.tokenize import java_available


@pytest.fixture(scope="module")
def prepared(prepared_shapes) -> PreparedData:
    return PreparedData(prepared_shapes)


def captions_of(prepared: PreparedData, pick, split: str = "test") -> dict[str, str]:
    return {item.image: pick(item) for item in prepared.split(split)}


@pytest.fixture(scope="module")
def two_results(prepared):
    """A close captioner (a reference reworded by hand) and a constant one, scored with Java when present."""
    close = evaluate_predictions(captions_of(prepared, lambda item: item.references[3]), prepared, name="close")
    constant = evaluate_predictions(captions_of(prepared, lambda item: "A red circle."), prepared, name="constant")
    return close, constant


def test_report_files_for_two_models(prepared, two_results, tmp_path):
    paths = write_report(list(two_results), prepared, tmp_path / "report", figure_images=4)
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == \
        ["metrics.json", "predictions.jsonl", "report.md", "results.png"]
    metrics = json.loads(paths["metrics.json"].read_text(encoding="utf-8"))
    expected_keys = set(METRIC_KEYS) if java_available() else set(METRIC_KEYS) - {"METEOR"}
    assert metrics["split"] == "test" and metrics["dataset"] == "shapes"
    assert [m["model"] for m in metrics["models"]] == ["close", "constant"]
    images = len(prepared.split("test"))
    for record in metrics["models"]:
        assert set(record["metrics"]) >= expected_keys
        assert record["counts"] == {"images": images, "references": 5 * images}
        assert {"distinct_share", "vocabulary", "mean_length"} <= set(record["diversity"])
        assert record["decoding"] is None and record["bundle"] is None and "score_s" in record["timing"]
    close, constant = (m["metrics"] for m in metrics["models"])
    assert all(close[key] > constant[key] for key in expected_keys)
    # the report names the repetitive model, shows x100 scores and examples
    report = paths["report.md"].read_text(encoding="utf-8")
    assert "Repetitive captioner" in report and '"a red circle" is given to 100%' in report
    assert f"| close | {images} | 100% | {100 * close['BLEU-1']:.1f} |" in report
    assert f"| constant | {images} | {1 / images:.0%} | {100 * constant['BLEU-1']:.1f} |" in report
    assert "Best captions" in report and "Worst captions" in report and "![captions" in report
    lines = [json.loads(line) for line in paths["predictions.jsonl"].read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 * images and set(lines[0]) == {"model", "image", "caption", "references"}
    assert lines[0]["references"] == list(prepared.split("test")[0].references)  # raw, not cleaned
    table = text_table(list(two_results)).splitlines()
    assert table[0].split()[:4] == ["model", "images", "distinct", "BLEU-1"] and len(table) == 3


def test_figure_has_one_panel_per_image(prepared, two_results, tmp_path):
    figure = results_figure(list(two_results), prepared, count=3)
    assert len(figure.axes) == 3
    assert all(axes.images for axes in figure.axes)  # every panel shows its picture
    label = figure.axes[0].get_xlabel()
    assert "close: " in label and "constant: A red circle." in label and "reference: " in label
    images = len(prepared.split("test"))
    assert len(results_figure(list(two_results), prepared, count=50).axes) == images  # never more than the split
    from PIL import Image

    path = write_report(list(two_results[:1]), prepared, tmp_path, figure_images=2)["results.png"]
    with Image.open(path) as png:
        assert png.format == "PNG" and png.width > 300


def test_read_predictions_names_the_bad_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"image": "a.png", "caption": "x"}\n\n{"image": "b.png", "caption": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"p.jsonl, line 3: not valid JSON"):
        read_predictions(path)
    path.write_text('{"image": "a.png", "caption": "x"}\n{"image": "a.png", "caption": "y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: image a.png already has a caption"):
        read_predictions(path)
    path.write_text('{"image": "a.png", "text": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match='line 1: .*"image" and "caption"'):
        read_predictions(path)
    with pytest.raises(DataError, match="does not exist"):
        read_predictions(tmp_path / "missing.jsonl")
    path.write_text('{"image": "a.png", "caption": "x", "model": "m1"}\n{"image": "a.png", "caption": "y", "model": "m2"}\n'
                    '{"image": "b.png", "caption": "z"}\n', encoding="utf-8")
    assert read_predictions(path) == {"m1": {"a.png": "x"}, "m2": {"a.png": "y"}, "p": {"b.png": "z"}}


def test_predictions_must_belong_to_the_split_and_may_cover_part_of_it(prepared):
    test_images = [item.image for item in prepared.split("test")]
    train_image = prepared.split("train")[0].image
    with pytest.raises(DataError, match=rf"1 predicted images are not in the test split .*: {train_image}"):
        evaluate_predictions({test_images[0]: "a dog", train_image: "a cat"}, prepared, java=False)
    partial = evaluate_predictions({test_images[0]: "a red circle"}, prepared, java=False)
    assert [item.image for item in partial.items] == test_images[:1]
    assert any(f"cover 1 of the {len(test_images)} images" in note for note in partial.notes)


@pytest.mark.slow
def test_report_and_figure_for_a_trained_captioner(prepared, demo_bundle, tmp_path):
    """A real shapes LSTM captions the test split in batches; its report and figure come from those captions."""
    from captioner.evaluation import diversity_warning, evaluate_captioner
    from captioner.models.registry import load_captioner

    captioner = load_captioner(demo_bundle)  # the session's demo bundle; only read here
    result = evaluate_captioner(captioner, prepared, "test", limit=4, batch_size=3, progress=False, java=False)
    assert [item.image for item in result.items] == [item.image for item in prepared.split("test")[:4]]
    assert all(isinstance(result.captions[item.image], str) for item in result.items)
    assert result.decoding == captioner.default_decoding.to_dict() and result.timing["caption_s"] > 0
    # a trained model beats a captioner that says one sentence for every picture, on every metric
    constant = evaluate_predictions({item.image: "Two red circles." for item in result.items}, prepared, java=False)
    assert all(result.scores[key] > constant.scores[key] for key in constant.scores)
    figure = results_figure([result], prepared, count=4)
    assert len(figure.axes) == 4 and all(axes.images for axes in figure.axes)
    paths = write_report([result], prepared, tmp_path, figure_images=4)
    record = json.loads(paths["metrics.json"].read_text(encoding="utf-8"))["models"][0]
    assert set(METRIC_KEYS) - {"METEOR"} <= set(record["metrics"]) and record["kind"] == "lstm"
    assert record["bundle"] is None  # evaluate_captioner alone records nothing; the command does
    assert f"## {captioner.name}" in paths["report.md"].read_text(encoding="utf-8")
    assert (diversity_warning(result.diversity) is None) == (result.diversity["distinct_share"] >= 0.2)
