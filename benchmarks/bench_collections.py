"""Folder captioning: ``captioner collection``'s in-process engine (reader threads decoding ahead, JPEG
draft decoding, batches of 16, rows appended per batch) against the straightforward loop in one process
(open one image, caption it, write a line), on 64 photo-sized JPEGs (1600x1200) made here; for the
DenseNet201 LSTM and for ViT-GPT2 (nlpconnect's full size), both with random weights built from configs.
Then the Ray engine on a local Ray instance against the in-process engine, as measured (Ray pays for
starting its workers and loading one model per actor)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure  # noqa: E402

PHOTOS = 64  # at least 64, as the target asks
PHOTO_SIZE = (1600, 1200)
BATCH = 16


def make_photos(folder: Path, count: int = PHOTOS, size: tuple[int, int] = PHOTO_SIZE) -> list[Path]:
    """Noisy, photo-like JPEGs (smooth gradients plus grain), so the decoder does real work."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    paths = []
    for index in range(count):
        colour = rng.uniform(40, 215, size=(1, 1, 3)).astype(np.float32)
        pixels = colour + 60 * ramp * rng.uniform(-1, 1, size=(1, 1, 3)) + rng.normal(0, 12, (height, width, 3))
        path = folder / f"IMG_{index:04d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def densenet_lstm():
    """An LSTM captioner on a DenseNet201 backbone, both with seeded random weights, original sizes."""
    import keras

    from bench_lstm import _settings, MAX_LENGTH, VOCAB

    from captioner.data.text import Vocabulary
    from captioner.features import BackboneSpec, build_backbone
    from captioner.models.bundle import BundleInfo
    from captioner.models.keras.lstm import LstmCaptioner
    from captioner.models.keras.lstm_network import build_sequence_model

    keras.utils.set_random_seed(1)
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *(f"w{i}" for i in range(VOCAB - 4))],
                            max_length=MAX_LENGTH)
    backbone = build_backbone(BackboneSpec("densenet201", weights="none"))
    return LstmCaptioner("densenet201-lstm", BundleInfo(kind="lstm", name="densenet201-lstm"),
                         build_sequence_model(_settings(), seed=1), vocabulary, backbone)


def vit_gpt2():
    """nlpconnect's architecture with random weights (the ViT-GPT2 benchmark's parts: letter-only words, so
    the captioner's word limit reads them as words)."""
    from bench_vit_gpt2 import full_size_parts

    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts

    return ImageToTextCaptioner(ModelParts(*full_size_parts()), BundleInfo(kind="image-to-text", name="vit-gpt2-random"),
                                precision="float32")


def straightforward(captioner, decoding, paths: list[Path], out: Path) -> float:
    """Images per second of the loop a person writes first: one image, one caption, one line."""
    from captioner.data.images import load_image

    started = time.perf_counter()
    with open(out, "w", encoding="utf-8") as lines:
        for path in paths:
            (caption,) = captioner.caption([load_image(path)], decoding)
            lines.write(json.dumps({"path": str(path), "caption": caption.text}) + "\n")
    return len(paths) / (time.perf_counter() - started)


def ours(captioner, decoding, folder: Path, out: Path, engine: str = "local") -> float:
    from captioner.collections import CollectionJob, CollectionSettings, run_collection

    job = CollectionJob(roots=(str(folder),), out=str(out), engine=engine, settings=CollectionSettings(batch_size=BATCH))
    started = time.perf_counter()
    summary = run_collection(job, captioner, decoding)
    assert summary.captioned == PHOTOS, summary.to_dict()
    return PHOTOS / (time.perf_counter() - started)


def run(quick: bool) -> list[dict]:
    from PIL import Image

    from captioner.models.base import Decoding

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-collections-") as tmp:
        work = Path(tmp)
        paths = make_photos(work / "photos")
        models = [("DenseNet201 LSTM", densenet_lstm, Decoding(method="greedy", max_length=12)),
                  ("ViT-GPT2", vit_gpt2, Decoding(method="greedy" if quick else "beam", beam_size=4,
                                                  max_length=8 if quick else 16))]
        for label, build, decoding in models:
            captioner = build()
            captioner.caption([Image.new("RGB", (64, 64))], decoding)  # warm-up, for both sides
            baseline = straightforward(captioner, decoding, paths, work / f"{label}-loop.jsonl")
            mine = ours(captioner, decoding, work / "photos", work / f"{label}.jsonl")
            rows.append(figure(f"folder captioning, {label}: collection engine vs one-image loop", mine, baseline,
                               "images/s", True, f"{PHOTOS} JPEGs {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, batch {BATCH}, "
                               f"{decoding.method} max {decoding.max_length}, random weights, CPU; the same model "
                               "object on both sides"))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # each figure as soon as it is known
            if label == "DenseNet201 LSTM":
                lstm = (captioner, decoding, mine)
        rows.append(ray_row(*lstm, work, quick))
    return rows


def ray_row(captioner, decoding, local_rate: float, work: Path, quick: bool) -> dict:
    """The same folder on a local Ray instance (one actor loads its own copy of the model from a bundle)."""
    try:
        import ray
    except ImportError:
        return figure("folder captioning on Ray vs in process", 0.0, local_rate, "images/s", True,
                      "not measured: Ray is not installed (pip install 'captioner[ray]')")
    from captioner.collections import CollectionJob, CollectionSettings, run_collection

    bundle = write_lstm_bundle(captioner, work / "bundle")
    ray.init(num_cpus=max(os.cpu_count() or 1, 2) + 1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}})
    try:
        job = CollectionJob(roots=(str(work / "photos"),), out=str(work / "ray.parquet"), engine="ray",
                            model=str(bundle), settings=CollectionSettings(batch_size=BATCH))
        started = time.perf_counter()
        summary = run_collection(job, captioner, decoding)
        rate = summary.captioned / (time.perf_counter() - started)
    finally:
        ray.shutdown()
    return figure("folder captioning, DenseNet201 LSTM: Ray engine (local instance, 1 actor) vs in-process engine",
                  rate, local_rate, "images/s", True,
                  "as measured, including Ray's start-up and the actor's model load; Ray pays off across machines")


def write_lstm_bundle(captioner, folder: Path) -> Path:
    """The benchmark's LSTM as a bundle (its random backbone saved with it), so a Ray actor loads the same model."""
    from captioner.models.bundle import BundleInfo
    from captioner.models.keras.lstm import write_bundle

    spec = captioner.backbone.spec.to_dict() if hasattr(captioner.backbone, "spec") else {"name": "densenet201",
                                                                                             "weights": "none"}
    info = BundleInfo(kind="lstm", name=captioner.name, backbone="densenet201", settings={"backbone": spec})
    return write_bundle(folder, info, captioner.model, captioner.vocabulary, captioner.backbone)
