"""Feature extraction speed: our batched, thread-decoded, compiled extraction into the cache, against the
original app's way (load one image, ``model.predict`` it, next image, in float32). Same DenseNet201 weights
(random: nothing is downloaded), same JPEGs of Flickr8k's usual size (500 x 375). Ours is measured twice:
in float32 (the baseline's own model object) and in bfloat16 (the same seeded weights built under
``mixed_bfloat16``), each against the same float32 baseline of the same run.

Measured on the 2-core AVX-512 BF16 machine: model calls of 8, 16 or 24 images and TensorFlow's
intra/inter-op thread counts (2/1, 1/2, 2/2, default) run within noise of each other in both precisions,
so the extractor keeps its defaults (calls of up to 8 images, TensorFlow's own thread counts).
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
        backbones = {precision: build_backbone(BackboneSpec("densenet201", weights="none", precision=precision))
                     for precision in ("float32", "bfloat16")}
        float32 = backbones["float32"]
        size = float32.image_size
        for backbone in backbones.values():
            backbone.warm_up()  # every way set up once before timing: tracing is not timed
        float32.model.predict(np.zeros((1, size, size, 3), np.float32), verbose=0)

        baseline_rate = 0.0  # best of a few alternating rounds: a busy machine slows every way
        rates = {precision: 0.0 for precision in backbones}
        stores = {}
        for round_number in range(rounds):
            started = time.perf_counter()
            baseline = original_way(float32.model, folder, names, size)
            baseline_rate = max(baseline_rate, count / (time.perf_counter() - started))
            for precision, backbone in backbones.items():
                cache = Path(scratch) / f"cache-{precision}-{round_number}"
                started = time.perf_counter()
                stores[precision] = extract_features(folder, names, backbone, cache_dir=cache, progress=False)
                rates[precision] = max(rates[precision], count / (time.perf_counter() - started))
                if stores[precision].summary.computed != count:
                    raise RuntimeError(f"expected {count} images computed, got {stores[precision].summary}")
        exact, rounded = stores["float32"].get_many(names), stores["bfloat16"].get_many(names)  # (count, 1920)
        difference = float(np.abs(exact - baseline).max())
        relative = float((np.linalg.norm(rounded - exact, axis=1) / np.linalg.norm(exact, axis=1)).max())
        cosine = float(((exact * rounded).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(rounded, axis=1)).min())

        started = time.perf_counter()
        again = extract_features(folder, names, float32, cache_dir=stores["float32"].path.parent.parent,
                                 progress=False)
        again.get_many(names)
        cached_rate = count / (time.perf_counter() - started)
        if again.summary.computed:
            raise RuntimeError(f"expected every image found in the cache, got {again.summary}")

    setup = (f"densenet201, random weights, 224 px, {count} JPEGs of 500x375, best of {rounds} alternating rounds; "
             "baseline: the original app's one float32 model.predict per image")
    return [
        figure("feature extraction (densenet201, float32)", rates["float32"], baseline_rate, "images/s", True,
               f"{setup}; largest difference from the baseline's vectors {difference:.1e} (resize filters differ)"),
        figure("feature extraction (densenet201, bfloat16)", rates["bfloat16"], baseline_rate, "images/s", True,
               f"{setup}; --precision bfloat16 (mixed_bfloat16, AVX-512 BF16 here): against our float32 vectors "
               f"relative L2 error at most {relative:.1%}, cosine similarity at least {cosine:.5f}"),
        figure("features already in the cache", cached_rate, baseline_rate, "images/s", True,
               "second run over the same images: read from the cache instead of computed"),
    ]
