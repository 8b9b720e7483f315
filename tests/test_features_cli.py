"""`captioner features` end to end, in a fresh process, on the shapes data set with the thumbnail backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support.cli import assert_clean_failure


@pytest.fixture
def prepared(runner, shapes_dataset, tmp_path) -> Path:
    done = runner("data", "prepare", shapes_dataset, "--out", tmp_path / "prepared")
    assert done.returncode == 0, done.stderr
    return tmp_path / "prepared"


def test_features_of_a_prepared_folder_then_found_in_the_cache(runner, prepared, tmp_path):
    first = runner("features", prepared, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["requested"], report["computed"], report["found"], report["skipped"]) == (60, 60, 0, {})
    assert report["dim"] == 768 and Path(report["cache"]).is_dir()
    assert Path(report["cache"]).is_relative_to(tmp_path / "cache" / "features")

    again = runner("features", prepared, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "0 computed, 60 found in the cache, 0 skipped" in again.stdout
    assert report["cache"] in again.stdout

    from captioner.features import BackboneSpec, extract_features

    store = extract_features(Path(report["images_dir"]), ["shape_00000.png"], BackboneSpec("thumbnail"),
                             cache_dir=tmp_path / "cache")
    assert store.summary.found == 1 and store.get("shape_00000.png").shape == (768,)
    assert np.isfinite(store.get("shape_00000.png")).all()


def test_raw_dataset_folder_shares_the_cache_with_its_prepared_folder(runner, shapes_dataset, prepared, tmp_path):
    raw = runner("features", shapes_dataset, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache", "--json")
    assert raw.returncode == 0, raw.stderr
    first = json.loads(raw.stdout)
    assert first["requested"] == 60 and first["computed"] == 60
    again = runner("features", prepared, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache", "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["cache"] == first["cache"] and report["computed"] == 0 and report["found"] == report["requested"]


def test_corrupt_image_is_listed_and_the_rest_computed(runner, shapes_dataset, tmp_path):
    import shutil

    dataset = tmp_path / "shapes"
    shutil.copytree(shapes_dataset, dataset)
    (dataset / "Images" / "shape_00003.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    done = runner("features", dataset, "--backbone", "thumbnail", "--cache-dir", tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "59 computed, 0 found in the cache, 1 skipped" in done.stdout
    assert "shape_00003.png" in done.stderr and "Traceback" not in done.stderr


def test_cache_dir_from_the_environment(runner, prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("CAPTIONER_CACHE_DIR", str(tmp_path / "env-cache"))
    done = runner("features", prepared, "--backbone", "thumbnail", "--image-size", "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dim"] == 48 and Path(report["cache"]).is_relative_to(tmp_path / "env-cache" / "features")


def test_missing_folder_is_one_clear_line(runner, tmp_path):
    assert_clean_failure(runner("features", tmp_path / "nowhere", "--backbone", "thumbnail"), "nowhere", "not a folder")


def test_offline_imagenet_is_one_clear_line(runner, prepared, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CAPTIONER_OFFLINE", "1")
    result = runner("features", prepared, "--cache-dir", tmp_path / "cache")
    assert_clean_failure(result, "ImageNet weights of densenet201", "--weights none")


def test_bad_weights_file_is_one_clear_line(runner, prepared, tmp_path):
    result = runner("features", prepared, "--weights", tmp_path / "missing.weights.h5", "--cache-dir", tmp_path / "c")
    assert_clean_failure(result, "missing.weights.h5")


def test_bad_precision_is_one_clear_line(runner, prepared, tmp_path):
    result = runner("features", prepared, "--precision", "float16", "--cache-dir", tmp_path / "cache")
    assert_clean_failure(result, "unknown precision 'float16'", "float32, bfloat16")
    result = runner("features", prepared, "--backbone", "thumbnail", "--precision", "bfloat16")
    assert_clean_failure(result, "thumbnail backbone", "--precision float32")
    result = runner("train", "lstm", prepared, "--out", tmp_path / "models" / "x", "--precision", "half")
    assert_clean_failure(result, "unknown precision 'half'")
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_bfloat16_from_training_to_captioning(runner, prepared, tmp_path):
    """train lstm --precision bfloat16 fills the bfloat16 cache and writes a bundle that captions in bfloat16."""
    backbone = ("--backbone", "densenet201", "--weights", "none", "--image-size", "32", "--precision", "bfloat16")
    tiny = ("--image-units", "8", "--embedding-dim", "8", "--lstm-units", "8", "--dense-units", "8")
    bundle = tmp_path / "models" / "shapes-bf16"
    trained = runner("train", "lstm", prepared, "--out", bundle, *backbone, *tiny, "--epochs", "1", "--quiet",
                  "--features", tmp_path / "cache")
    assert trained.returncode == 0, trained.stderr
    assert json.loads((bundle / "backbone.json").read_text())["backbone"]["precision"] == "bfloat16"
    assert json.loads((bundle / "captioner.json").read_text())["settings"]["backbone"]["precision"] == "bfloat16"

    found = runner("features", prepared, *backbone, "--cache-dir", tmp_path / "cache", "--json")
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert (report["computed"], report["found"]) == (0, 60) and report["backbone"]["precision"] == "bfloat16"

    from captioner.data.images import load_image
    from captioner.models.registry import load_captioner

    captioner = load_captioner(bundle)
    assert captioner.backbone.spec.precision == "bfloat16"
    picture = load_image(Path(report["images_dir"]) / "shape_00000.png")
    assert captioner.caption([picture])[0].text.strip()
