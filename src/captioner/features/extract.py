"""Fill the feature cache: decode images in threads while the model embeds the previous batch.

Only the images the cache lacks are computed; each batch is stored as soon as it is done, so an
interrupted run resumes where it stopped. At most two batches of pixels are in memory at a time.
Unreadable images are skipped with a warning that names them; the summary counts them.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from captioner.data.images import load_image
from captioner.errors import DataError, ImageError
from captioner.features.backbones import Backbone, BackboneSpec, build_backbone
from captioner.features.cache import FeatureStore
from captioner.progress import progress_bar


class UnreadableImageWarning(UserWarning):
    """Some images of a data set could not be decoded and were left out of the features."""


@dataclass
class ExtractionSummary:
    """What one ``extract_features`` run did."""

    requested: int  # distinct images asked for
    found: int  # already in the cache
    computed: int  # embedded by this run
    skipped: dict[str, str] = field(default_factory=dict)  # image -> why it could not be read
    seconds: float = 0.0  # wall time of the run

    def to_dict(self) -> dict:
        return {"requested": self.requested, "found": self.found, "computed": self.computed,
                "skipped": dict(self.skipped), "seconds": round(self.seconds, 3)}


def _pixels(images_dir: Path, name: str, backbone: Backbone) -> np.ndarray:
    """Decode one image with the project's safe loader and preprocess it (runs in a worker thread)."""
    return backbone.preprocess(load_image(images_dir / name, name=name))  # (size, size, 3)


def _check_names(image_names: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(image_names))  # distinct, in the order given
    for name in names:
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"image name {name!r} must be a file name relative to the images folder")
    return names


def extract_features(images_dir: str | os.PathLike, image_names: Sequence[str], backbone: Backbone | BackboneSpec, *,
                     cache_dir: str | os.PathLike | None = None, batch_size: int = 32, progress: bool = True,
                     on_batch: Callable[[int, int], None] | None = None) -> FeatureStore:
    """Embeddings of ``image_names`` (relative to ``images_dir``), computing only what the cache lacks.

    ``backbone`` may be a spec: it is then built only when something is missing. ``on_batch(done, total)``
    is called after each stored batch. The returned store's ``summary`` says what this run did.
    """
    started = time.perf_counter()
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise DataError(f"images folder {images_dir} does not exist; check the data set path")
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    names = _check_names(image_names)
    spec = backbone.spec if isinstance(backbone, Backbone) else backbone
    store = FeatureStore.open(images_dir, spec, cache_dir)
    missing = store.missing(names)
    summary = ExtractionSummary(requested=len(names), found=len(names) - len(missing), computed=0)
    if missing:
        if not isinstance(backbone, Backbone):
            backbone = build_backbone(spec)
        _compute(images_dir, missing, backbone, store, summary, batch_size, progress, on_batch)
    if summary.skipped:
        reasons = list(summary.skipped.values())
        listed = "; ".join(reasons[:20]) + (f"; and {len(reasons) - 20} more" if len(reasons) > 20 else "")
        warnings.warn(f"skipped {len(summary.skipped)} unreadable image(s): {listed}", UnreadableImageWarning,
                      stacklevel=2)
        if len(summary.skipped) == len(names):
            raise DataError(f"none of the {len(names)} images in {images_dir} could be read ({listed})")
    summary.seconds = time.perf_counter() - started
    store.summary = summary
    return store


def _compute(images_dir: Path, missing: list[str], backbone: Backbone, store: FeatureStore,
             summary: ExtractionSummary, batch_size: int, show_progress: bool, on_batch) -> None:
    """Decode batch i+1 in worker threads while the model embeds batch i; store every batch at once."""
    batches = [missing[start:start + batch_size] for start in range(0, len(missing), batch_size)]
    workers = max(2, min(8, os.cpu_count() or 2))
    bar = progress_bar(total=len(missing), desc=f"features ({backbone.spec.name})", unit="img", enabled=show_progress)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    try:
        def submit(batch: list[str]) -> list[Future]:
            return [pool.submit(_pixels, images_dir, name, backbone) for name in batch]

        pending = submit(batches[0])
        done = 0
        for index, batch in enumerate(batches):
            futures = pending
            pending = submit(batches[index + 1]) if index + 1 < len(batches) else []  # prefetch the next batch
            pixels, ready = [], []
            for name, future in zip(batch, futures):
                try:
                    pixels.append(future.result())  # (size, size, 3)
                    ready.append(name)
                except ImageError as error:
                    summary.skipped[name] = str(error)
            if ready:
                store.add(ready, backbone.embed_arrays(np.stack(pixels)))  # (len(ready), dim)
                summary.computed += len(ready)
            done += len(batch)
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(done, len(missing))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def ensure_features(prepared, spec: BackboneSpec, *, cache_dir: str | os.PathLike | None = None,
                    batch_size: int = 32, progress: bool = True,
                    on_batch: Callable[[int, int], None] | None = None) -> FeatureStore:
    """Features of every image in a prepared folder's train, val and test splits (a PreparedData or its path)."""
    from captioner.data.prepared import PreparedData
    from captioner.data.records import SPLITS

    if not isinstance(prepared, PreparedData):
        prepared = PreparedData(prepared)
    names = [item.image for split in SPLITS for item in prepared.split(split)]
    return extract_features(prepared.images_dir, names, spec, cache_dir=cache_dir, batch_size=batch_size,
                            progress=progress, on_batch=on_batch)
