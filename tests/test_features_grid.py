"""Spatial grids for the attention captioner: the thumbnail grid, a real DenseNet201 map, the float16 cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from captioner.data.images import load_image
from captioner.features import BackboneSpec, build_backbone, extract_features

from support.cli import run_cli


def test_grid_shapes_are_known_without_building_a_model():
    assert BackboneSpec("densenet201", grid=True).shape == (7, 7, 1920)  # the default: 224 px
    assert BackboneSpec("inceptionv3", grid=True).shape == (8, 8, 2048)
    assert BackboneSpec("thumbnail", image_size=24, grid=True).shape == (6, 6, 48)
    assert BackboneSpec("densenet201").shape == (1920,)
    with pytest.raises(ValueError, match="multiple of 4"):
        BackboneSpec("thumbnail", image_size=10, grid=True)
    spec = BackboneSpec("thumbnail", image_size=24, grid=True)
    assert BackboneSpec.from_dict(spec.to_dict()) == spec
    assert BackboneSpec.from_dict({"name": "thumbnail"}).grid is False  # specs written before grids existed


def test_the_thumbnail_grid_keeps_each_cell_where_it_was(shapes_dataset):
    image = load_image(shapes_dataset / "Images" / "shape_00000.png")
    grid = build_backbone(BackboneSpec("thumbnail", image_size=24, grid=True)).embed([image])  # (1, 6, 6, 48)
    flat = build_backbone(BackboneSpec("thumbnail", image_size=24)).embed([image]).reshape(24, 24, 3)
    assert grid.shape == (1, 6, 6, 48)
    for row, col in ((0, 0), (2, 5), (5, 1)):
        cell = flat[row * 4:(row + 1) * 4, col * 4:(col + 1) * 4]  # (4, 4, 3) pixels of that cell
        np.testing.assert_array_equal(grid[0, row, col], cell.reshape(-1))


@pytest.mark.slow
def test_densenet201_grid_is_the_map_its_pooled_vector_averages(shapes_dataset):
    images = [load_image(shapes_dataset / "Images" / f"shape_{i:05d}.png") for i in range(2)]
    grid = build_backbone(BackboneSpec("densenet201", weights="none", image_size=64, grid=True)).embed(images)
    pooled = build_backbone(BackboneSpec("densenet201", weights="none", image_size=64)).embed(images)
    assert grid.shape == (2, 2, 2, 1920) and grid.dtype == np.float32
    np.testing.assert_allclose(grid.mean(axis=(1, 2)), pooled, rtol=1e-4, atol=1e-5)


def test_grids_are_cached_in_float16_apart_from_vectors_and_resume(shapes_dataset, tmp_path):
    folder = shapes_dataset / "Images"
    names = sorted(p.name for p in folder.iterdir())[:10]
    spec = BackboneSpec("thumbnail", image_size=24, grid=True)

    class Stop(Exception):
        pass

    def stop_after_first(done, total):
        raise Stop

    with pytest.raises(Stop):
        extract_features(folder, names, spec, cache_dir=tmp_path, batch_size=4, progress=False,
                         on_batch=stop_after_first)
    store = extract_features(folder, names, spec, cache_dir=tmp_path, batch_size=4, progress=False)
    assert (store.summary.found, store.summary.computed) == (4, 6)  # the first chunk survived the interruption
    assert store.path.name.startswith("thumbnail-24px-grid-") and store.shape == (6, 6, 48)
    shards = list((store.path / "shards").glob("*.npy"))
    assert {np.load(path).dtype for path in shards} == {np.dtype("float16")}
    expected = build_backbone(spec).embed([load_image(folder / n) for n in names[:3]])
    np.testing.assert_allclose(store.get_many(names[:3]), expected, atol=1e-3)  # float16 of values in [0, 1]
    assert store.get_many(names[:3]).dtype == np.float32
    vectors = extract_features(folder, names, BackboneSpec("thumbnail", image_size=24), cache_dir=tmp_path,
                               progress=False)
    assert vectors.path != store.path and vectors.shape == (24 * 24 * 3,)
    assert json.loads((store.path / "cache.json").read_text())["shape"] == [6, 6, 48]


def test_features_command_fills_the_grid_cache(shapes_dataset, tmp_path):
    result = run_cli("features", shapes_dataset, "--backbone", "thumbnail", "--image-size", "24", "--grid",
                     "--cache-dir", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["shape"] == [6, 6, 48] and report["backbone"]["grid"] is True and report["computed"] == 60
