"""`captioner evaluate` as a user runs it: predictions files, trained models, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import assert_clean_failure, run_main


@pytest.fixture(scope="module")
def prepared(prepared_shapes) -> Path:
    return prepared_shapes


def test_items(prepared: Path, split: str = "test") -> list[dict]:
    return [json.loads(line) for line in (prepared / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


test_items.__test__ = False  # a helper, not a test


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def hide_java(monkeypatch, tmp_path: Path) -> None:
    """PATH without any 'java': the pure-Python fallback."""
    empty = tmp_path / "no-java-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def test_predictions_file_without_java_prints_table_note_and_writes_report(prepared, tmp_path, monkeypatch):
    rows = [{"image": row["image"], "caption": row["references"][0]} for row in test_items(prepared)]
    predictions = write_jsonl(tmp_path / "system-a.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    hide_java(monkeypatch, tmp_path)
    result = run_main("evaluate", "--predictions", predictions, "--dataset", prepared)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[1].split()
    assert header == ["model", "images", "distinct", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"]
    row = lines[2].split()
    assert row[:7] == ["system-a", str(len(rows)), "100%", "100.0", "100.0", "100.0", "100.0"]  # x100, perfect
    assert any(line.startswith("note: METEOR missing") and "Java" in line for line in lines)
    # default report folder: reports/<dataset>-<split>-<UTC time>/
    reports = list((tmp_path / "reports").glob("shapes-test-*/report.md"))
    assert len(reports) == 1 and f"report: {reports[0].relative_to(tmp_path)}" in result.stdout
    # the report's own predictions.jsonl (with a "model" field) scores again to the same numbers
    again = run_main("evaluate", "--predictions", reports[0].parent / "predictions.jsonl", "--dataset", prepared,
                    "--report", tmp_path / "again", "--json")
    assert again.returncode == 0, again.stderr
    first = json.loads((reports[0].parent / "metrics.json").read_text(encoding="utf-8"))["models"][0]
    second = json.loads(again.stdout)["models"][0]
    assert second["model"] == "system-a" and second["metrics"] == first["metrics"]


@pytest.mark.parametrize("case, fragments", [
    ("missing file", ["does not exist"]),
    ("bad line", ["line 2", "not valid json"]),
    ("unknown image", ["not in the test split", "nowhere.png"]),
    ("empty file", ["holds no captions"]),
])
def test_bad_predictions_files_fail_cleanly(prepared, tmp_path, case, fragments):
    image = test_items(prepared)[0]["image"]
    path = tmp_path / "p.jsonl"
    if case == "bad line":
        path.write_text(json.dumps({"image": image, "caption": "a"}) + "\n{oops\n", encoding="utf-8")
    elif case == "unknown image":
        write_jsonl(path, [{"image": image, "caption": "a"}, {"image": "nowhere.png", "caption": "b"}])
    elif case == "empty file":
        path.write_text("\n", encoding="utf-8")
    result = run_main("evaluate", "--predictions", path, "--dataset", prepared, "--report", tmp_path / "r")
    assert_clean_failure(result, *fragments)
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_bad_datasets_models_and_arguments_fail_cleanly(prepared, shapes_dataset, tmp_path):
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"image": test_items(prepared)[0]["image"], "caption": "a"}])
    assert_clean_failure(run_main("evaluate", "--predictions", predictions, "--dataset", tmp_path / "nope"),
                         "does not exist")
    assert_clean_failure(run_main("evaluate", "no-such-model", "--dataset", prepared, "--models-dir", tmp_path),
                         "no model bundle named 'no-such-model'")
    assert_clean_failure(run_main("evaluate", "--dataset", prepared), "name at least one MODEL")
    assert_clean_failure(run_main("evaluate", "m", "--predictions", predictions, "--dataset", prepared), "not both")


def evaluate_in_process(*args) -> dict:
    result = run_main("evaluate", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["models"][0]


def test_a_raw_data_set_scores_as_its_prepared_folder(prepared, shapes_dataset, tmp_path, monkeypatch):
    hide_java(monkeypatch, tmp_path)
    rows = [{"image": row["image"], "caption": row["references"][-1]} for row in test_items(prepared)]
    predictions = write_jsonl(tmp_path / "p.jsonl", rows)
    from_prepared = evaluate_in_process("--predictions", predictions, "--dataset", prepared,
                                        "--report", tmp_path / "a")
    from_raw = evaluate_in_process("--predictions", predictions, "--dataset", shapes_dataset,
                                   "--report", tmp_path / "b")
    assert from_raw["metrics"] == from_prepared["metrics"] and from_raw["metrics"]["BLEU-4"] > 0.5
    assert not list(shapes_dataset.glob("*.jsonl"))  # nothing written into the data set


def test_predictions_score_against_flickr8k_as_downloaded(flickr8k_text, tmp_path, monkeypatch):
    """The real Flickr8k text files beside the images folder, no 'data prepare' first."""
    import shutil

    hide_java(monkeypatch, tmp_path)
    dataset = tmp_path / "flickr8k"
    shutil.copytree(flickr8k_text, dataset / "Flickr8k_text")
    names = {line.split("#")[0] for line in (flickr8k_text / "Flickr8k.token.txt").read_text().splitlines() if line}
    (dataset / "Flicker8k_Dataset").mkdir()
    for name in names:  # the scorer reads no pixels: empty files stand in for the 8,091 JPEGs
        (dataset / "Flicker8k_Dataset" / name).touch()
    test_images = (flickr8k_text / "Flickr_8k.testImages.txt").read_text().split()
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"image": name, "caption": "a dog runs on the grass"}
                                                      for name in test_images])
    scored = evaluate_in_process("--predictions", predictions, "--dataset", dataset,
                                 "--report", tmp_path / "report")
    assert scored["counts"]["images"] == 1000 and 0 < scored["metrics"]["BLEU-1"] < 1


# --- a real trained captioner ----------------------------------------------------------------------

@pytest.fixture
def shapes_model(models_copy) -> Path:
    """This test's own copy of the session's demo bundle (evaluate records metrics in it)."""
    return models_copy / "shapes-demo"


@pytest.mark.slow
def test_evaluating_a_trained_model_writes_report_and_records_metrics_in_its_bundle(shapes_model, prepared, tmp_path,
                                                                                    monkeypatch):
    from captioner.evaluation.tokenize import java_available
    from captioner.models.bundle import read_bundle_info

    result = run_main("evaluate", shapes_model.name, "--dataset", prepared, "--models-dir", shapes_model.parent,
                     "--beam", "2", "--report", tmp_path / "report", "--figure-images", "4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].split()[0] == shapes_model.name
    assert f"recorded in {shapes_model / 'captioner.json'}" in result.stdout
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text(encoding="utf-8"))
    record = metrics["models"][0]
    expected = {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"} | ({"METEOR"} if java_available() else set())
    assert expected <= set(record["metrics"])
    assert record["kind"] == "lstm" and record["decoding"]["method"] == "beam" and record["decoding"]["beam_size"] == 2
    assert record["counts"]["images"] == len(test_items(prepared)) and record["timing"]["images_per_s"] > 0
    stored = read_bundle_info(shapes_model).metrics["test"]
    assert expected <= set(stored) and stored["images"] == record["counts"]["images"]
    assert stored["CIDEr"] == pytest.approx(record["metrics"]["CIDEr"])
    assert (tmp_path / "report" / "results.png").stat().st_size > 10_000
    # a partial run (--limit) does not overwrite what the bundle says about the whole split
    hide_java(monkeypatch, tmp_path)
    partial = run_main("evaluate", shapes_model, "--dataset", prepared, "--limit", "2", "--report", tmp_path / "partial")
    assert partial.returncode == 0, partial.stderr
    assert "Not recorded in the bundle" in partial.stdout
    assert read_bundle_info(shapes_model).metrics["test"] == stored
