"""`captioner features` end to end, in a fresh process, on the shapes data set with the thumbnail backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_clean_failure
from test_features import write_prepared_shapes


@pytest.fixture
def prepared(shapes_dataset, tmp_path) -> Path:
    return write_prepared_shapes(shapes_dataset, tmp_path / "prepared")


def test_features_of_a_prepared_folder_then_found_in_the_cache(cli, prepared, tmp_path):
    first = cli("features", prepared, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["requested"], report["computed"], report["found"], report["skipped"]) == (60, 60, 0, {})
    assert report["dim"] == 768 and Path(report["cache"]).is_dir()
    assert Path(report["cache"]).is_relative_to(tmp_path / "cache" / "features")

    again = cli("features", prepared, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "0 computed, 60 found in the cache, 0 skipped" in again.stdout
    assert report["cache"] in again.stdout

    from captioner.features import BackboneSpec, extract_features

    store = extract_features(Path(report["images_dir"]), ["shape_00000.png"], BackboneSpec("thumbnail"),
                             cache_dir=tmp_path / "cache")
    assert store.summary.found == 1 and store.get("shape_00000.png").shape == (768,)
    assert np.isfinite(store.get("shape_00000.png")).all()


def test_cache_dir_from_the_environment(cli, prepared, tmp_path):
    done = cli("features", prepared, "--backbone", "thumbnail", "--image-size", "4", "--json",
               env={"CAPTIONER_CACHE_DIR": str(tmp_path / "env-cache")})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dim"] == 48 and Path(report["cache"]).is_relative_to(tmp_path / "env-cache" / "features")


def test_missing_folder_is_one_clear_line(cli, tmp_path):
    assert_clean_failure(cli("features", tmp_path / "nowhere", "--backbone", "thumbnail"), "nowhere", "not a folder")


def test_offline_imagenet_is_one_clear_line(cli, prepared, tmp_path):
    result = cli("features", prepared, "--cache-dir", tmp_path / "cache",
                 env={"KERAS_HOME": str(tmp_path / "keras"), "CAPTIONER_OFFLINE": "1"})
    assert_clean_failure(result, "ImageNet weights of densenet201", "--weights none")


def test_bad_weights_file_is_one_clear_line(cli, prepared, tmp_path):
    result = cli("features", prepared, "--weights", tmp_path / "missing.weights.h5", "--cache-dir", tmp_path / "c")
    assert_clean_failure(result, "missing.weights.h5")
