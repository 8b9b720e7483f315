"""Image encoders: a named backbone turns a picture into one embedding vector.

Keras applications (``include_top=False, pooling="avg"``) give the real embeddings: DenseNet201 (1920
values, the original captioner's), ResNet50, InceptionV3, EfficientNetB0 and VGG16. The weightless
``thumbnail`` backbone (the picture shrunk to N x N RGB, values in [0, 1]) needs no TensorFlow at all;
tests and the shapes demo use it. TensorFlow/Keras are imported only when a Keras backbone is built.

A Keras backbone can run in bfloat16 (``precision="bfloat16"``): the model is built under Keras's
``mixed_bfloat16`` policy, so its weights stay float32 (the same weight files load either way) while the
convolutions compute in bfloat16, which is faster on CPUs with AVX-512 BF16 or AMX and on recent GPUs.
Embeddings come back as float32 either way, within about 1% of the float32 ones.

A grid backbone (``grid=True``) keeps the spatial layout for the attention captioner: a Keras backbone
gives its last convolutional map (DenseNet201: 7 x 7 x 1920 at 224 px) instead of the pooled vector, and
the thumbnail cuts its N x N picture into cells of :data:`THUMBNAIL_CELL` pixels (24 px: 6 x 6 cells of 48
values). Either way an image becomes (rows, cols, channels).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from captioner.errors import DownloadError, ModelError
from captioner.features.keras_applications import (KERAS_BACKBONES, WEIGHT_SUFFIXES, KerasApplication,
                                                   check_imagenet_available, load_weights_file)

DEFAULT_BATCH = 32  # images preprocessed together in ``embed``
CALL_SHAPES = (1, 2, 4, 8)  # batch lengths the compiled model sees: fixed shapes, measured fastest on CPU


THUMBNAIL = "thumbnail"
THUMBNAIL_SIZE = 16  # default side of the thumbnail backbone: 16 x 16 x 3 = 768 values
THUMBNAIL_CELL = 4  # side in pixels of one cell of the thumbnail grid: 4 x 4 x 3 = 48 values per cell
GRID_STRIDE = 32  # pixels per cell of a Keras backbone's last convolutional map (224 px -> 7 x 7)
BACKBONE_NAMES = (*KERAS_BACKBONES, THUMBNAIL)
DEFAULT_BACKBONE = "densenet201"
PRECISIONS = ("float32", "bfloat16")  # how a Keras backbone computes; embeddings are float32 either way
BFLOAT16_POLICY = "mixed_bfloat16"  # Keras dtype policy for precision "bfloat16": float32 weights, bfloat16 compute


@dataclass(frozen=True)
class BackboneSpec:
    """Which image encoder, with which weights, at which input size. Stored in every model bundle."""

    name: str = DEFAULT_BACKBONE  # one of BACKBONE_NAMES
    weights: str = "imagenet"  # "imagenet" (Keras download/cache), "none" (seeded random init) or a weights file path
    image_size: int | None = None  # side in pixels the encoder sees; None = the backbone's own default
    seed: int = 0  # seeds the random weights when weights is "none"
    # "float32" or "bfloat16" (Keras backbones only: faster where the hardware has bfloat16 arithmetic,
    # embeddings within about 1%); part of the feature-cache key, so the two never mix
    precision: str = "float32"
    # True: the spatial map (rows, cols, channels) for the attention captioner, cached as float16;
    # False: one pooled vector per image
    grid: bool = False

    def __post_init__(self):
        if self.name not in BACKBONE_NAMES:
            raise ValueError(f"unknown backbone {self.name!r}; choose one of {', '.join(BACKBONE_NAMES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.name == THUMBNAIL and self.precision != "float32":
            raise ValueError("the thumbnail backbone runs no model, so it has no bfloat16 mode; "
                             "leave --precision out or use --precision float32")
        if not isinstance(self.weights, str) or not self.weights:
            raise ValueError("weights must be 'imagenet', 'none' or the path of a weights file")
        if self.name == THUMBNAIL:
            if self.weights not in ("none", "imagenet"):
                raise ValueError("the thumbnail backbone has no weights; leave --weights out or use --weights none")
            object.__setattr__(self, "weights", "none")  # nothing to load: "imagenet" (the default) means none here
        elif self.weights not in ("imagenet", "none") and not self.weights.endswith(WEIGHT_SUFFIXES):
            raise ValueError(f"weights file {self.weights!r} must end in {', '.join(WEIGHT_SUFFIXES)} "
                             "(or use 'imagenet' or 'none')")
        if self.image_size is not None:
            smallest = 75 if self.name == "inceptionv3" else (1 if self.name == THUMBNAIL else 32)
            if not isinstance(self.image_size, int) or self.image_size < smallest:
                raise ValueError(f"image size for {self.name} must be a whole number of at least {smallest} pixels")
        if self.grid and self.name == THUMBNAIL and self.size % THUMBNAIL_CELL:
            raise ValueError(f"the thumbnail grid needs an image size that is a multiple of {THUMBNAIL_CELL} pixels, "
                             f"not {self.size}")

    @property
    def size(self) -> int:
        """The input side in pixels actually used."""
        if self.image_size is not None:
            return self.image_size
        return THUMBNAIL_SIZE if self.name == THUMBNAIL else KERAS_BACKBONES[self.name].image_size

    @property
    def dim(self) -> int:
        """Length of the embedding (of one grid cell when ``grid``), known without building the model."""
        if self.name == THUMBNAIL:
            return THUMBNAIL_CELL * THUMBNAIL_CELL * 3 if self.grid else self.size * self.size * 3
        return KERAS_BACKBONES[self.name].dim

    @property
    def grid_side(self) -> int:
        """Cells per side of the grid (1 for a pooled vector)."""
        if not self.grid:
            return 1
        if self.name == THUMBNAIL:
            return self.size // THUMBNAIL_CELL
        if self.name == "inceptionv3":  # valid convolutions: 299 px -> 8 x 8
            return (self.size - 75) // GRID_STRIDE + 1
        return self.size // GRID_STRIDE

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one image's features: (dim,) or (rows, cols, channels)."""
        return (self.grid_side, self.grid_side, self.dim) if self.grid else (self.dim,)

    def resolved(self) -> "BackboneSpec":
        """The same spec with the image size filled in."""
        return replace(self, image_size=self.size)

    def to_dict(self) -> dict:
        return {"name": self.name, "weights": self.weights, "image_size": self.image_size, "seed": self.seed,
                "precision": self.precision, "grid": self.grid}

    @classmethod
    def from_dict(cls, data: dict) -> "BackboneSpec":
        from captioner.config import settings_from_dict

        return settings_from_dict(cls, data)


class Backbone:
    """An image encoder: ``preprocess`` a picture (numpy/PIL only, thread-safe), ``embed_arrays`` a batch."""

    def __init__(self, spec: BackboneSpec):
        self.spec = spec.resolved()
        self.dim = self.spec.dim
        self.shape = self.spec.shape  # of one image's features: (dim,) or (rows, cols, channels)
        self.image_size = self.spec.size

    def preprocess(self, image: Image.Image) -> np.ndarray:  # (size, size, 3) float32
        raise NotImplementedError

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:  # (n, *shape) float32
        raise NotImplementedError

    def embed(self, images: Sequence[Image.Image], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Embeddings of PIL images, ``batch_size`` pictures per model call."""
        parts = [np.zeros((0, *self.shape), np.float32)]
        for start in range(0, len(images), batch_size):
            batch = np.stack([self.preprocess(image) for image in images[start:start + batch_size]])
            parts.append(self.embed_arrays(batch))  # (chunk, *shape)
        return np.concatenate(parts)  # (n, *shape)

    def warm_up(self) -> None:
        """Prepare the model so the first real batch runs at full speed (nothing to do for most backbones)."""

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        expected = (self.image_size, self.image_size, 3)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(f"{self.spec.name} expects a batch of shape (n, {', '.join(map(str, expected))}) "
                             f"from preprocess(); got {batch.shape}")
        return batch

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.spec.name}, weights={self.spec.weights}, size={self.image_size}, "
                f"dim={self.dim}, precision={self.spec.precision})")


class ThumbnailBackbone(Backbone):
    """The picture itself, shrunk to N x N RGB and scaled to [0, 1]: no weights, no TensorFlow."""

    def preprocess(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB").resize((self.image_size, self.image_size), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0  # (size, size, 3)

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        batch = self._check_batch(batch)  # (n, size, size, 3)
        if not self.spec.grid:
            return batch.reshape(len(batch), -1).copy()  # (n, size * size * 3)
        side, cell = self.spec.grid_side, THUMBNAIL_CELL
        cells = batch.reshape(len(batch), side, cell, side, cell, 3)  # (n, rows, y, cols, x, 3)
        return cells.transpose(0, 1, 3, 2, 4, 5).reshape(len(batch), side, side, -1).copy()  # (n, rows, cols, 48)


class KerasBackbone(Backbone):
    """A ``keras.applications`` model with global average pooling, called as a compiled inference function."""

    def __init__(self, spec: BackboneSpec, model, app: KerasApplication):
        super().__init__(spec)
        import importlib

        self.model = model
        self.app = app
        if tuple(model.output_shape[1:]) != self.shape:
            raise ValueError(f"{spec.name} at {self.image_size} px gives features of shape {model.output_shape[1:]}, "
                             f"not {self.shape}; choose an image size that is a multiple of {GRID_STRIDE} pixels")
        self._preprocess_input = importlib.import_module(f"keras.applications.{app.module}").preprocess_input
        self._call = _compiled_call(model, self.image_size)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        resized = image.convert("RGB").resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.float32)  # (size, size, 3), 0..255
        return self._preprocess_input(pixels.copy())  # numpy in, numpy out: the application's own scaling

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        """Embeddings of preprocessed pixels, in model calls of a few fixed batch lengths (the last one padded)."""
        batch = self._check_batch(batch)  # (n, size, size, 3)
        parts = [np.zeros((0, *self.shape), np.float32)]
        step = CALL_SHAPES[-1]
        for start in range(0, len(batch), step):
            chunk = batch[start:start + step]  # (k, size, size, 3), k <= step
            real = len(chunk)
            length = next(shape for shape in CALL_SHAPES if shape >= real)
            if length > real:
                padding = np.zeros((length - real, *chunk.shape[1:]), np.float32)
                chunk = np.concatenate([chunk, padding])  # (length, size, size, 3)
            parts.append(self._call(chunk)[:real])  # (k, *shape)
        return np.concatenate(parts).astype(np.float32, copy=False)  # (n, *shape)

    def warm_up(self) -> None:
        """Run every call shape once, so the first real batches do not pay for graph and kernel set-up."""
        for length in CALL_SHAPES:
            self._call(np.zeros((length, self.image_size, self.image_size, 3), np.float32))


def _compiled_call(model, size: int):
    """``model(x, training=False)`` as one traced graph (TensorFlow) or a no-grad call (other backends),
    always giving float32 (a bfloat16 model's output is cast back inside the call).

    The TensorFlow graph takes any batch length (its signature leaves the batch axis open), so it is traced
    once: no retracing per batch shape, and none of ``model.predict``'s per-call set-up.
    """
    import keras

    def forward(x):
        return keras.ops.cast(model(x, training=False), "float32")  # (n, dim)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        graph = tf.function(forward, reduce_retracing=True,
                            input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])
        return lambda batch: graph(batch).numpy()  # (n, dim)
    if keras.backend.backend() == "torch":
        import torch

        def call(batch):
            with torch.no_grad():
                return keras.ops.convert_to_numpy(forward(batch))  # (n, dim)
        return call
    return lambda batch: keras.ops.convert_to_numpy(forward(batch))  # (n, dim)


def build_backbone(spec: BackboneSpec | str = DEFAULT_BACKBONE) -> Backbone:
    """Build the encoder a spec names, loading its weights (ImageNet from the Keras cache or the network,
    seeded random, or a local file). Raises OfflineError quickly when ImageNet weights cannot be fetched."""
    if isinstance(spec, str):
        spec = BackboneSpec(spec)
    if spec.name == THUMBNAIL:
        return ThumbnailBackbone(spec)
    app = KERAS_BACKBONES[spec.name]
    if spec.weights == "imagenet":
        check_imagenet_available(spec.name)
        model = _build_model(spec, "imagenet")
    elif spec.weights == "none":
        model = _build_model(spec, None)
    else:
        path = Path(spec.weights).expanduser()
        if not path.is_file():
            raise ModelError(f"weights file {path} does not exist; give the path of a .weights.h5, .keras or .h5 file, "
                             "or use --weights imagenet or --weights none")
        return backbone_from_weights_file(spec, path)
    return KerasBackbone(spec, model, app)


def backbone_from_weights_file(spec: BackboneSpec, path: Path) -> "KerasBackbone":
    """The spec's Keras backbone with the weights of ``path`` (refusing a file that does not fit it)."""
    model = _build_model(spec, None)
    load_weights_file(model, path, spec.name)
    return KerasBackbone(spec, model, KERAS_BACKBONES[spec.name])


def _build_model(spec: BackboneSpec, weights: str | None):
    """The Keras model, under the spec's precision; random weights are seeded so the same spec always gives
    the same model (the seeded values do not depend on the precision: weights are float32 either way)."""
    import keras

    app = KERAS_BACKBONES[spec.name]
    try:
        with _seeded(spec.seed if weights is None else None), _dtype_policy(spec.precision):
            return getattr(keras.applications, app.constructor)(
                include_top=False, weights=weights, pooling=None if spec.grid else "avg",
                input_shape=(spec.size, spec.size, 3))
    except ValueError as error:
        raise ValueError(f"cannot build {spec.name} at {spec.size} px: {error}") from None
    except Exception as error:  # Keras reports a failed download as a bare Exception
        if weights == "imagenet":
            raise DownloadError(f"downloading the ImageNet weights of {spec.name} from {app.weights_url} failed "
                                f"({error}); retry, or use --weights none or --weights PATH") from None
        raise


@contextmanager
def _dtype_policy(precision: str):
    """Build layers under ``mixed_bfloat16`` ("bfloat16") or ``float32``, then restore the previous global policy.

    Keras applications take no dtype argument, so the global policy is the only way in; each layer keeps
    the policy it was built with, so restoring it afterwards leaves the model as built. "float32" is set
    explicitly too, so a global policy chosen elsewhere in the process never changes a float32 backbone.
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(BFLOAT16_POLICY if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextmanager
def _seeded(seed: int | None):
    """Seed Keras's initialisers for the block, then give Python's and NumPy's generators their old state."""
    if seed is None:
        yield
        return
    import random

    import keras

    python_state, numpy_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
