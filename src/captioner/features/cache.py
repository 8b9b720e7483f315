"""The on-disk feature cache: one folder per (images folder, backbone, weights, precision, vector or grid),
filled in atomic chunks.

```
$CAPTIONER_CACHE_DIR/features/<backbone>-<size>px[-bfloat16][-grid]-<key hash>/
  cache.json              what the folder holds: images folder, backbone spec, weights identity, shape
  shards/<id>.npy         float32 (n, dim) embeddings of one chunk, or float16 (n, rows, cols, channels) grids
  shards/<id>.json        the n image names of that chunk, written after its .npy
```

Grids are stored in float16, half the bytes (DenseNet201's 7 x 7 x 1920 map: 184 KB per image, so about
1.5 GB for Flickr8k and 6 GB for Flickr30k), and read back as float32.

A chunk counts only once its ``.json`` exists, and both files are written under a temporary name and
renamed, so an interrupted run leaves whole chunks behind and the next run computes only the rest.
Arrays load with ``allow_pickle=False`` and are memory-mapped, so opening a large cache is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from captioner import environment
from captioner.errors import DataError
from captioner.files import atomic_path, is_temporary, write_json_atomic
from captioner.features.backbones import BackboneSpec

CACHE_FILE = "cache.json"
SHARDS = "shards"
FORMAT_VERSION = 1


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding every feature cache: ``cache_dir`` (or ``$CAPTIONER_CACHE_DIR``, else
    ``~/.cache/captioner``) plus ``features/``."""
    base = Path(cache_dir).expanduser() if cache_dir else environment.current().cache_base
    return base / "features"


def weights_identity(spec: BackboneSpec) -> str:
    """What makes two runs of the same backbone give the same numbers: the weights, not where they came from."""
    if spec.name == "thumbnail":
        return "thumbnail"
    if spec.weights == "imagenet":
        return "imagenet"
    if spec.weights == "none":
        import keras  # random initial values can change between Keras versions

        return f"random:seed={spec.seed}:keras={keras.__version__}"
    return f"sha256:{file_sha256(Path(spec.weights).expanduser())}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise DataError(f"weights file {path} does not exist; check the --weights path") from None
    return digest.hexdigest()


def cache_key(images_dir: Path, spec: BackboneSpec) -> dict:
    """What a cache folder's features depend on. The precision enters only when it is not float32, so float32
    caches written before precisions existed keep their folder; bfloat16 features always get their own."""
    key = {"format": FORMAT_VERSION, "images_dir": str(Path(images_dir).resolve()), "backbone": spec.name,
           "image_size": spec.size, "weights": weights_identity(spec)}
    if spec.precision != "float32":
        key["precision"] = spec.precision
    if spec.grid:
        key["grid"] = True
    return key


def cache_folder(images_dir: Path, spec: BackboneSpec, cache_dir=None) -> tuple[Path, dict]:
    key = cache_key(images_dir, spec)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    precision = "" if spec.precision == "float32" else f"-{spec.precision}"
    grid = "-grid" if spec.grid else ""
    return cache_root(cache_dir) / f"{spec.name}-{spec.size}px{precision}{grid}-{digest}", key


class FeatureStore:
    """Read access to one cache folder (``get``, ``get_many``, ``in``), and ``add`` for the extractor."""

    def __init__(self, path: Path, shape: int | tuple[int, ...], dtype: str = "float32"):
        self.path = Path(path)
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)  # of one image: (dim,) or a grid
        self.dim = self.shape[-1]  # values per vector (per grid cell for a grid)
        self.dtype = np.dtype(dtype)  # as stored; read back as float32
        self.summary = None  # the ExtractionSummary of the run that returned this store, if any
        self._where: dict[str, tuple[Path, int]] = {}  # image name -> (shard file, row)
        self._arrays: dict[Path, np.ndarray] = {}
        (self.path / SHARDS).mkdir(parents=True, exist_ok=True)
        for manifest in sorted((self.path / SHARDS).glob("*.json")):
            if is_temporary(manifest):  # left by a write that was killed
                continue
            self._index_shard(manifest)

    @classmethod
    def open(cls, images_dir: Path, spec: BackboneSpec, cache_dir=None) -> "FeatureStore":
        """The cache folder for these images and this backbone, created when new."""
        folder, key = cache_folder(images_dir, spec, cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / CACHE_FILE).is_file():
            meta = {**key, "spec": spec.to_dict(), "dim": spec.dim, "shape": list(spec.shape)}
            write_json_atomic(folder / CACHE_FILE, meta)
        return cls(folder, spec.shape, "float16" if spec.grid else "float32")

    def _index_shard(self, manifest: Path) -> None:
        array_path = manifest.with_suffix(".npy")
        try:
            names = json.loads(manifest.read_text(encoding="utf-8"))["names"]
            array = np.load(array_path, mmap_mode="r", allow_pickle=False)  # (n, *shape)
            if array.shape != (len(names), *self.shape) or array.dtype != self.dtype:
                raise ValueError(f"shape {array.shape} {array.dtype}, expected {(len(names), *self.shape)} {self.dtype}")
        except (OSError, ValueError, KeyError, TypeError) as error:
            warnings.warn(f"ignoring damaged feature chunk {manifest.name} in {self.path} ({error}); "
                          "its images will be computed again", stacklevel=3)
            return
        self._arrays[array_path] = array
        for row, name in enumerate(names):
            self._where[name] = (array_path, row)

    def add(self, names: Sequence[str], features: np.ndarray) -> None:
        """Store one chunk: the ``.npy`` first, then its names; both through temporary files."""
        features = np.ascontiguousarray(features, dtype=self.dtype)  # (n, *shape)
        if features.shape != (len(names), *self.shape):
            raise ValueError(f"expected features of shape {(len(names), *self.shape)}, got {features.shape}")
        stem = self.path / SHARDS / uuid.uuid4().hex[:16]
        array_path = stem.with_suffix(".npy")
        with atomic_path(array_path) as temporary:
            np.save(temporary, features, allow_pickle=False)
        write_json_atomic(stem.with_suffix(".json"), {"names": list(names)})  # after the array: marks it complete
        self._arrays[array_path] = features
        for row, name in enumerate(names):
            self._where[name] = (array_path, row)

    @property
    def names(self) -> list[str]:
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def __len__(self) -> int:
        return len(self._where)

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self._where]

    def get(self, name: str) -> np.ndarray:
        """The embedding of one image as float32, shape (dim,) or (rows, cols, channels)."""
        try:
            array_path, row = self._where[name]
        except KeyError:
            raise DataError(f"no features for image {name!r} in {self.path}; run 'captioner features' "
                            "on its data set (it may have been skipped as unreadable)") from None
        return np.array(self._arrays[array_path][row], dtype=np.float32)  # (*shape,)

    def get_many(self, names: Sequence[str]) -> np.ndarray:
        """Embeddings of several images in the order given, shape (n, *shape)."""
        if len(names) == 0:
            return np.zeros((0, *self.shape), np.float32)
        return np.stack([self.get(name) for name in names])  # (n, *shape)

    def __repr__(self) -> str:
        return f"FeatureStore({self.path}, {len(self)} images, shape={self.shape}, {self.dtype})"
