"""bfloat16 backbones: real DenseNet201 models (random weights, small images) against their float32 twins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from captioner.data.images import load_image
from captioner.features import BackboneSpec, build_backbone, extract_features, load_backbone, save_backbone
from captioner.features.cache import cache_key
from captioner.features.saving import SPEC_FILE, read_backbone_spec

SMALL = 48  # image side: small enough to be quick on a CPU
FLOAT32 = BackboneSpec("densenet201", weights="none", image_size=SMALL)
BFLOAT16 = BackboneSpec("densenet201", weights="none", image_size=SMALL, precision="bfloat16")
# Measured on these models: cosine similarity >= 0.99998 and relative L2 error <= 0.5% per image
# (0.4% at 224 px); the limits below leave a wide margin while still catching a broken bf16 path.
MIN_COSINE = 0.999
MAX_RELATIVE_ERROR = 0.02


@pytest.fixture(scope="module")
def float32_densenet():
    return build_backbone(FLOAT32)


@pytest.fixture(scope="module")
def bfloat16_densenet():
    return build_backbone(BFLOAT16)


@pytest.fixture
def images(shapes_dataset) -> tuple[Path, list[str]]:
    folder = shapes_dataset / "Images"
    return folder, sorted(p.name for p in folder.iterdir())[:6]


def open_images(folder: Path, names: list[str]):
    return [load_image(folder / name) for name in names]


def test_precision_is_checked_and_stored_in_the_spec():
    assert BackboneSpec().precision == "float32"
    assert BFLOAT16.to_dict()["precision"] == "bfloat16"
    assert BackboneSpec.from_dict(BFLOAT16.to_dict()) == BFLOAT16
    old = {"name": "densenet201", "weights": "none", "image_size": SMALL, "seed": 0}  # written before precisions
    assert BackboneSpec.from_dict(old) == FLOAT32
    with pytest.raises(ValueError, match="unknown precision 'float16'; choose one of float32, bfloat16"):
        BackboneSpec("densenet201", precision="float16")
    with pytest.raises(ValueError, match="thumbnail backbone runs no model"):
        BackboneSpec("thumbnail", precision="bfloat16")


def test_bfloat16_embeddings_are_float32_arrays_close_to_float32(float32_densenet, bfloat16_densenet, images):
    import keras

    pictures = open_images(*images)
    exact = float32_densenet.embed(pictures)  # (6, 1920)
    rounded = bfloat16_densenet.embed(pictures)  # (6, 1920)
    assert rounded.dtype == np.float32 and rounded.shape == exact.shape == (6, 1920)
    cosine = (exact * rounded).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(rounded, axis=1)
    relative = np.linalg.norm(rounded - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert cosine.min() > MIN_COSINE and relative.max() < MAX_RELATIVE_ERROR, (cosine, relative)
    assert not np.array_equal(rounded, exact)  # the bfloat16 path really computes in bfloat16
    convolutions = [layer for layer in bfloat16_densenet.model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert {layer.dtype_policy.name for layer in convolutions} == {"mixed_bfloat16"}
    assert {weight.dtype for weight in bfloat16_densenet.model.weights} == {"float32"}  # weights stay float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is given back


def test_float32_backbone_ignores_a_global_bfloat16_policy(images):
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")  # set elsewhere in the process
    try:
        backbone = build_backbone(BackboneSpec("vgg16", weights="none", image_size=32))
    finally:
        keras.config.set_dtype_policy("float32")
    assert {layer.dtype_policy.name for layer in backbone.model.layers} == {"float32"}


def test_precision_keys_the_feature_cache(float32_densenet, bfloat16_densenet, images, tmp_path):
    folder, names = images
    exact = extract_features(folder, names, float32_densenet, cache_dir=tmp_path, progress=False)
    assert exact.summary.computed == len(names)
    rounded = extract_features(folder, names, bfloat16_densenet, cache_dir=tmp_path, progress=False)
    assert (rounded.summary.computed, rounded.summary.found) == (len(names), 0)  # nothing taken from float32
    assert rounded.path != exact.path and "bfloat16" in rounded.path.name
    assert json.loads((rounded.path / "cache.json").read_text())["spec"]["precision"] == "bfloat16"
    again = extract_features(folder, names, BFLOAT16, cache_dir=tmp_path, progress=False)
    assert (again.summary.computed, again.summary.found, again.path) == (0, len(names), rounded.path)
    np.testing.assert_array_equal(again.get_many(names), bfloat16_densenet.embed(open_images(folder, names)))
    assert not np.array_equal(again.get_many(names), exact.get_many(names))
    assert "precision" not in cache_key(folder, FLOAT32)  # float32 caches from before precisions keep their folder


@pytest.mark.slow
def test_bfloat16_bundle_reloads_as_bfloat16_and_its_weights_serve_float32(float32_densenet, bfloat16_densenet,
                                                                           images, tmp_path):
    pictures = open_images(*images)
    save_backbone(bfloat16_densenet, tmp_path / "bundle")
    recorded = json.loads((tmp_path / "bundle" / SPEC_FILE).read_text())["backbone"]
    assert recorded["precision"] == "bfloat16"
    loaded = load_backbone(tmp_path / "bundle")
    assert loaded.spec == bfloat16_densenet.spec and loaded.spec.precision == "bfloat16"
    np.testing.assert_array_equal(loaded.embed(pictures), bfloat16_densenet.embed(pictures))
    as_float32 = load_backbone(tmp_path / "bundle", FLOAT32)  # the same weights file, computed in float32
    np.testing.assert_allclose(as_float32.embed(pictures), float32_densenet.embed(pictures), rtol=1e-5, atol=1e-6)


def test_backbone_json_without_precision_loads_as_float32(tmp_path):
    save_backbone(build_backbone(BackboneSpec("thumbnail", image_size=4)), tmp_path)
    path = tmp_path / SPEC_FILE
    data = json.loads(path.read_text())
    assert data["backbone"].pop("precision") == "float32"
    path.write_text(json.dumps(data))
    assert read_backbone_spec(tmp_path).precision == "float32"
    assert load_backbone(tmp_path).spec.precision == "float32"
