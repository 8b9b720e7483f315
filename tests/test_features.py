"""Backbones, bundle saving and the feature cache, with real Keras models (random weights) and real files."""

from __future__ import annotations

import socket
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captioner.data.images import load_image
from captioner.errors import DataError, ModelError, OfflineError
from captioner.features import (KERAS_BACKBONES, BackboneSpec, UnreadableImageWarning, build_backbone,
                                ensure_features, extract_features, load_backbone, save_backbone)
from captioner.features import keras_applications as weights_module

SMALL = 48  # image side for the real DenseNet201 runs: small enough to be quick on a CPU


@pytest.fixture(scope="module")
def densenet():
    """The default backbone for real, random weights, at a small size (built once for the module)."""
    return build_backbone(BackboneSpec("densenet201", weights="none", image_size=SMALL))


@pytest.fixture
def images(shapes_dataset) -> tuple[Path, list[str]]:
    folder = shapes_dataset / "Images"
    return folder, sorted(p.name for p in folder.iterdir())[:12]


def open_images(folder: Path, names: list[str]) -> list[Image.Image]:
    return [load_image(folder / name) for name in names]


def test_importing_features_loads_no_tensorflow():
    import subprocess

    code = "import sys, captioner.features; print('keras' in sys.modules or 'tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("name", ["resnet50", "inceptionv3", "efficientnetb0", "vgg16"])
def test_keras_backbone_output_dims(name):
    import keras

    spec = BackboneSpec(name, weights="none")
    model = getattr(keras.applications, KERAS_BACKBONES[name].constructor)(
        include_top=False, weights=None, pooling="avg", input_shape=(spec.size, spec.size, 3))
    assert model.output_shape == (None, spec.dim)
    assert spec.dim == {"resnet50": 2048, "inceptionv3": 2048, "efficientnetb0": 1280, "vgg16": 512}[name]
    assert spec.size == (299 if name == "inceptionv3" else 224)


def test_densenet201_embeds_for_real(densenet, images):
    folder, names = images
    vectors = densenet.embed(open_images(folder, names[:3]))
    assert densenet.dim == 1920 and BackboneSpec().dim == 1920 and BackboneSpec().size == 224
    assert vectors.shape == (3, 1920) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all() and vectors.std() > 0
    assert not np.allclose(vectors[0], vectors[1])  # different pictures, different embeddings


def test_densenet_preprocess_is_the_applications_own(densenet, images):
    import keras

    folder, names = images
    image = open_images(folder, names[:1])[0]
    pixels = np.asarray(image.resize((SMALL, SMALL), Image.Resampling.BILINEAR), dtype=np.float32)
    expected = keras.applications.densenet.preprocess_input(pixels[None].copy())[0]
    np.testing.assert_allclose(densenet.preprocess(image), expected, rtol=1e-6)


def test_batched_embeddings_equal_one_by_one(densenet, images):
    folder, names = images
    pictures = open_images(folder, names[:5])
    together = densenet.embed(pictures)  # (5, 1920)
    alone = np.concatenate([densenet.embed([picture]) for picture in pictures])  # (5, 1920)
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_thumbnail_backbone(images):
    folder, names = images
    backbone = build_backbone(BackboneSpec("thumbnail"))
    assert backbone.dim == 768 and build_backbone(BackboneSpec("thumbnail", image_size=8)).dim == 192
    vectors = backbone.embed(open_images(folder, names[:2]))
    assert vectors.shape == (2, 768) and vectors.min() >= 0 and vectors.max() <= 1
    white = backbone.embed([Image.new("RGB", (500, 375), (255, 255, 255))])
    np.testing.assert_allclose(white, 1.0)


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        BackboneSpec("alexnet")
    with pytest.raises(ValueError, match="must end in"):
        BackboneSpec("densenet201", weights="weights.bin")
    with pytest.raises(ValueError, match="at least 75"):
        BackboneSpec("inceptionv3", weights="none", image_size=64)
    with pytest.raises(ModelError, match="does not exist"):
        build_backbone(BackboneSpec("densenet201", weights="/nowhere/densenet.weights.h5"))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_imagenet_offline_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.delenv("CAPTIONER_OFFLINE", raising=False)
    app = KERAS_BACKBONES["densenet201"]
    unreachable = f"https://127.0.0.1:{closed_port()}/{app.weights_file}"
    monkeypatch.setitem(KERAS_BACKBONES, "densenet201", replace(app, weights_url=unreachable))
    started = time.perf_counter()
    with pytest.raises(OfflineError) as caught:
        build_backbone(BackboneSpec("densenet201", weights="imagenet"))
    assert time.perf_counter() - started < weights_module.PROBE_TIMEOUT_S + 2
    message = str(caught.value)
    assert "--weights none" in message and "--weights PATH" in message and "cannot be reached" in message


@pytest.mark.slow
def test_backbone_saved_in_bundle_gives_identical_embeddings(densenet, images, tmp_path):
    folder, names = images
    pictures = open_images(folder, names[:3])
    save_backbone(densenet, tmp_path / "bundle")
    assert (tmp_path / "bundle" / "backbone.weights.h5").is_file()
    loaded = load_backbone(tmp_path / "bundle")
    assert loaded.spec == densenet.spec
    np.testing.assert_array_equal(loaded.embed(pictures), densenet.embed(pictures))


def test_thumbnail_bundle_needs_no_weights(tmp_path):
    save_backbone(build_backbone(BackboneSpec("thumbnail", image_size=4)), tmp_path)
    assert not (tmp_path / "backbone.weights.h5").exists()
    assert load_backbone(tmp_path).dim == 48


def test_cache_second_run_computes_nothing(images, tmp_path):
    folder, names = images
    spec = BackboneSpec("thumbnail")
    first = extract_features(folder, names, spec, cache_dir=tmp_path, batch_size=5, progress=False)
    assert (first.summary.computed, first.summary.found) == (12, 0)
    again = extract_features(folder, names, spec, cache_dir=tmp_path, batch_size=5, progress=False)
    assert (again.summary.computed, again.summary.found) == (0, 12)
    assert again.path == first.path and str(again.path).startswith(str(tmp_path / "features"))
    np.testing.assert_array_equal(again.get_many(names), first.get_many(names))
    expected = build_backbone(spec).embed(open_images(folder, names))
    np.testing.assert_allclose(again.get_many(names), expected)


def test_subset_then_superset_computes_only_the_rest(densenet, images, tmp_path):
    folder, names = images
    part = extract_features(folder, names[:4], densenet, cache_dir=tmp_path, batch_size=3, progress=False)
    assert part.summary.computed == 4
    whole = extract_features(folder, names[:7], densenet, cache_dir=tmp_path, batch_size=3, progress=False)
    assert (whole.summary.computed, whole.summary.found) == (3, 4)
    np.testing.assert_allclose(whole.get_many(names[:7]), densenet.embed(open_images(folder, names[:7])),
                               rtol=1e-4, atol=1e-5)


def test_interrupted_run_resumes(images, tmp_path):
    folder, names = images
    spec = BackboneSpec("thumbnail")

    def stop_after_first_batch(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_features(folder, names, spec, cache_dir=tmp_path / "a", batch_size=5, progress=False,
                         on_batch=stop_after_first_batch)
    resumed = extract_features(folder, names, spec, cache_dir=tmp_path / "a", batch_size=5, progress=False)
    assert (resumed.summary.found, resumed.summary.computed) == (5, 7)
    clean = extract_features(folder, names, spec, cache_dir=tmp_path / "b", batch_size=5, progress=False)
    np.testing.assert_array_equal(resumed.get_many(names), clean.get_many(names))
    assert not list(resumed.path.rglob(".*"))  # no temporary files left behind


def test_corrupt_image_is_skipped_and_reported(images, tmp_path):
    folder, names = images
    broken = tmp_path / "images"
    broken.mkdir()
    for name in names[:4]:
        (broken / name).write_bytes((folder / name).read_bytes())
    (broken / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UnreadableImageWarning, match="broken.jpg"):
        store = extract_features(broken, [*names[:4], "broken.jpg", "absent.png"], BackboneSpec("thumbnail"),
                                 cache_dir=tmp_path, progress=False)
    assert sorted(store.summary.skipped) == ["absent.png", "broken.jpg"] and store.summary.computed == 4
    assert "broken.jpg" not in store and names[0] in store
    with pytest.raises(DataError, match="broken.jpg"):
        store.get("broken.jpg")


def test_bad_inputs_raise_clear_errors(tmp_path, images):
    folder, names = images
    with pytest.raises(DataError, match="does not exist"):
        extract_features(tmp_path / "missing", names, BackboneSpec("thumbnail"), cache_dir=tmp_path)
    with pytest.raises(DataError, match="relative"):
        extract_features(folder, ["../secret.png"], BackboneSpec("thumbnail"), cache_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="none of the 1 images"):
            extract_features(folder, ["absent.png"], BackboneSpec("thumbnail"), cache_dir=tmp_path)


def test_cache_is_keyed_by_backbone_size_and_weights(images, tmp_path):
    folder, names = images
    paths = {extract_features(folder, names[:2], spec, cache_dir=tmp_path, progress=False).path
             for spec in (BackboneSpec("thumbnail"), BackboneSpec("thumbnail", image_size=8))}
    assert len(paths) == 2


def test_ensure_features_covers_every_split(shapes_prepared, tmp_path):
    store = ensure_features(shapes_prepared, BackboneSpec("thumbnail"), cache_dir=tmp_path, progress=False)
    from captioner.data.prepared import PreparedData

    prepared = PreparedData(shapes_prepared)
    every = [item.image for split in ("train", "val", "test") for item in prepared.split(split)]
    assert store.summary.computed == len(every) == len(store)
    assert store.get_many(every).shape == (len(every), 768)


@pytest.fixture
def shapes_prepared(shapes_dataset, tmp_path) -> Path:
    from captioner.data.prepare import prepare_dataset

    prepare_dataset(shapes_dataset, tmp_path / "prepared")
    return tmp_path / "prepared"


@pytest.mark.slow
def test_random_weights_are_seeded(images):
    folder, names = images
    pictures = open_images(folder, names[:2])
    spec = BackboneSpec("vgg16", weights="none", image_size=32)
    first, again = build_backbone(spec).embed(pictures), build_backbone(spec).embed(pictures)
    other = build_backbone(replace(spec, seed=1)).embed(pictures)
    assert first.shape == (2, 512)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.slow
def test_local_weights_file_is_used_and_keys_the_cache(images, tmp_path):
    folder, names = images
    pictures = open_images(folder, names[:2])
    random_vgg = build_backbone(BackboneSpec("vgg16", weights="none", image_size=32, seed=3))
    path = tmp_path / "vgg16.weights.h5"
    random_vgg.model.save_weights(path)
    from_file = build_backbone(BackboneSpec("vgg16", weights=str(path), image_size=32))
    np.testing.assert_array_equal(from_file.embed(pictures), random_vgg.embed(pictures))

    first = extract_features(folder, names[:2], from_file, cache_dir=tmp_path / "cache", progress=False)
    save_backbone(from_file, tmp_path / "bundle")  # a file's weights travel inside the bundle
    build_backbone(BackboneSpec("vgg16", weights="none", image_size=32, seed=4)).model.save_weights(path)
    changed = extract_features(folder, names[:2], BackboneSpec("vgg16", weights=str(path), image_size=32),
                               cache_dir=tmp_path / "cache", progress=False)
    assert changed.path != first.path and changed.summary.computed == 2  # new file content, new cache entry
    path.unlink()
    np.testing.assert_array_equal(load_backbone(tmp_path / "bundle").embed(pictures), random_vgg.embed(pictures))
    with pytest.raises(ModelError, match="cannot load"):
        build_backbone(BackboneSpec("densenet201", weights=str(tmp_path / "bundle" / "backbone.weights.h5"),
                                    image_size=32))
