"""Feature extraction speed: our batched, thread-decoded, compiled extraction into the cache, against the
original app's way (load one image, ``model.predict`` it, next image). Same DenseNet201 model object
(random weights: nothing is downloaded), same JPEGs of Flickr8k's usual size (500 x 375).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from run import figure  # noqa: E402


def write_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """JPEGs of 500 x 375 with gradients, shapes and noise, so they decode like real photos."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    ys, xs = np.mgrid[0:375, 0:500]
    for number in range(count):
        base = np.stack([xs * rng.uniform(0.2, 0.5), ys * rng.uniform(0.2, 0.6), (xs + ys) * 0.2], axis=-1)
        pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)  # (375, 500, 3)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, 450), rng.integers(0, 330)
            draw.ellipse((x, y, x + rng.integers(20, 120), y + rng.integers(20, 120)),
                         fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        name = f"photo_{number:04d}.jpg"
        image.save(folder / name, quality=90)
        names.append(name)
    return names


def original_way(model, folder: Path, names: list[str], size: int) -> np.ndarray:
    """The original app: keras load_img, img_to_array, preprocess_input, one model.predict per image."""
    import keras

    rows = []
    for name in names:
        image = keras.utils.load_img(folder / name, target_size=(size, size))
        pixels = keras.applications.densenet.preprocess_input(keras.utils.img_to_array(image)[None])  # (1, s, s, 3)
        rows.append(model.predict(pixels, verbose=0)[0])  # (dim,)
    return np.stack(rows)


def run(quick: bool) -> list[dict]:
    from captioner.features import BackboneSpec, build_backbone, extract_features

    count, rounds = (16, 2) if quick else (48, 3)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        names = write_photos(folder, count)
        backbone = build_backbone(BackboneSpec("densenet201", weights="none"))
        size = backbone.image_size
        backbone.warm_up()  # both ways set up once before timing: tracing is not timed
        backbone.model.predict(np.zeros((1, size, size, 3), np.float32), verbose=0)

        baseline_rate = ours_rate = 0.0  # best of a few alternating rounds: a busy machine slows either way
        for round_number in range(rounds):
            started = time.perf_counter()
            baseline = original_way(backbone.model, folder, names, size)
            baseline_rate = max(baseline_rate, count / (time.perf_counter() - started))

            cache = Path(scratch) / f"cache-{round_number}"
            started = time.perf_counter()
            store = extract_features(folder, names, backbone, cache_dir=cache, progress=False)
            ours_rate = max(ours_rate, count / (time.perf_counter() - started))
            if store.summary.computed != count:
                raise RuntimeError(f"expected {count} images computed, got {store.summary}")
        difference = float(np.abs(store.get_many(names) - baseline).max())

        started = time.perf_counter()
        again = extract_features(folder, names, backbone, cache_dir=cache, progress=False)
        again.get_many(names)
        cached_rate = count / (time.perf_counter() - started)

    note = (f"densenet201, random weights, 224 px, {count} JPEGs of 500x375, best of {rounds} alternating rounds; "
            f"largest difference from the baseline's vectors {difference:.1e} (resize filters differ)")
    return [
        figure("feature extraction (densenet201)", ours_rate, baseline_rate, "images/s", True, note),
        figure("features already in the cache", cached_rate, baseline_rate, "images/s", True,
               "second run over the same images: read from the cache instead of computed"),
    ]
