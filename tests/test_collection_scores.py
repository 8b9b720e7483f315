"""`captioner collection --score clip [--min-score X]`: each row's CLIPScore in the results, low scorers marked
for review and kept out of the photos' metadata (real demo model, tiny CLIP, real exiftool)."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from support.cli import assert_clean_failure, run_main

pytest.importorskip("keras")

PHOTOS = 8


@pytest.fixture
def photos(shapes_dataset, tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for picture in sorted((shapes_dataset / "Images").iterdir())[:PHOTOS]:
        shutil.copy(picture, folder / picture.name)
    return folder


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_scores_fill_a_column_and_low_scorers_get_no_metadata(photos, demo_bundle, clip_score_model, tmp_path):
    scored = tmp_path / "scored.jsonl"
    result = run_main("collection", photos, "--out", scored, "--model", demo_bundle, "--score", "clip")
    assert result.returncode == 0, result.stderr
    scores = {Path(row["path"]).name: row["clip_score"] for row in rows_of(scored)}
    assert len(scores) == PHOTOS and all(0 < score <= 2.5 for score in scores.values())
    assert len(set(scores.values())) > 1

    threshold = statistics.median(scores.values())
    low = {name for name, score in scores.items() if score < threshold}
    out = tmp_path / "reviewed.csv"
    result = run_main("collection", photos, "--out", out, "--model", demo_bundle, "--score", "clip",
                      "--min-score", threshold, "--metadata", "sidecar")
    assert result.returncode == 0, result.stderr
    assert f"{len(low)} captions scored below" in result.stdout
    from captioner.collections import read_rows

    rows = {Path(row.path).name: row for row in read_rows(out)}
    assert {name for name, row in rows.items() if row.review} == low and low
    assert {name: row.clip_score for name, row in rows.items()} == pytest.approx(scores)
    sidecars = {path.name.removesuffix(".xmp") for path in photos.glob("*.xmp")}
    assert sidecars == set(scores) - low  # every caption above the line, none below it


def test_min_score_without_a_score_or_out_of_range_is_refused(photos, demo_bundle, tmp_path):
    out = tmp_path / "r.jsonl"
    assert_clean_failure(run_main("collection", photos, "--out", out, "--model", demo_bundle, "--min-score", "0.5"),
                         "--score clip")
    assert_clean_failure(run_main("collection", photos, "--out", out, "--model", demo_bundle, "--score", "clip",
                                  "--min-score", "3"), "between 0 and 2.5")
    assert not out.exists()


def test_csv_results_written_before_the_score_columns_are_read_and_appended_to(tmp_path):
    from captioner.collections.results import EARLIER_FIELDS, ResultRow, open_results, read_rows

    out = tmp_path / "old.csv"
    out.write_text(",".join(EARLIER_FIELDS) + "\n" + "a.jpg,abc,1,1,demo,{},a cat,-1.5,[],{},\n")
    with open_results(out) as results:
        results.append([ResultRow("b.jpg", "def", 2, 2, "demo", {}, caption="a dog", score=-2.0, clip_score=0.7)])
    assert [(row.path, row.caption) for row in read_rows(out)] == [("a.jpg", "a cat"), ("b.jpg", "a dog")]
    assert out.read_text().splitlines()[0] == ",".join(EARLIER_FIELDS)  # the file keeps its own columns
