"""Batches for training the LSTM captioner, built one at a time (``keras.utils.PyDataset``).

Only token ids (small integer arrays) are held for the whole split; image features are read from the
feature store batch by batch, and padded arrays exist for one batch at a time.

* :class:`TeacherForcingBatches`: one row per caption, ``startseq w_1 .. w_n`` in, ``w_1 .. w_n endseq``
  out. Captions are grouped by length into buckets (multiples of :data:`BUCKET_STEP` tokens) and a batch
  holds captions of one bucket only, padded to that bucket's length, not to the longest caption of the
  data set: Flickr8k captions average 13 tokens, the longest has 37. Targets are padded like the tokens;
  the fitted model predicts, and the loss reads, only the real words
  (:func:`captioner.models.keras.lstm_network.build_teacher_model`), so the padding counts for nothing.
* :class:`PrefixBatches`: the original generator: one row per (caption, position), a prefix
  ``startseq w_1 .. w_k`` padded to the longest caption, and the next word out.

The order is shuffled per epoch by a generator seeded with (seed, epoch), so an epoch's batches are the
same whether training ran straight through or was resumed. :func:`fit_input` hands either kind to
``model.fit`` with the caption axis declared variable on every backend.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import keras
import numpy as np

from captioner.data.prepared import PreparedItem
from captioner.data.text import Vocabulary


BUCKET_STEP = 8  # teacher-forcing batches are padded to a multiple of this many tokens (a handful of shapes)


class FeatureSource(Protocol):
    def get_many(self, names: Sequence[str]) -> np.ndarray: ...


def encode_captions(items: Sequence[PreparedItem], vocabulary: Vocabulary, max_length: int) -> list[list[np.ndarray]]:
    """Token ids of every caption, per image, cut to ``max_length`` tokens."""
    return [[np.asarray(vocabulary.encode(caption)[:max_length], dtype=np.int32) for caption in item.captions]
            for item in items]


class _EpochBatches(keras.utils.PyDataset):
    """What both batch kinds share: the items, the feature store, the epoch whose order is used."""

    def __init__(self, items: Sequence[PreparedItem], vocabulary: Vocabulary, features: FeatureSource,
                 steps: int, batch_size: int, seed: int, shuffle: bool):
        super().__init__(workers=1, use_multiprocessing=False)
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.images = [item.image for item in items]
        self.captions = encode_captions(items, vocabulary, steps + 1)
        self.features = features
        self.steps = steps  # tokens the model reads per row (max_length - 1)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self._epoch_order: tuple[int, object] | None = None  # (epoch, that epoch's order)

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (0-based) from now on."""
        self.epoch = epoch

    def _order_of_epoch(self, build):
        """The order of the current epoch, made by ``build(rng)`` once per epoch from (seed, epoch)."""
        if self._epoch_order is None or self._epoch_order[0] != self.epoch:
            self._epoch_order = (self.epoch, build(np.random.default_rng([self.seed, self.epoch])))
        return self._epoch_order[1]

    def _pad(self, rows: list[np.ndarray], length: int) -> np.ndarray:
        out = np.zeros((len(rows), length), dtype=np.int32)  # (rows, length), 0 = <pad>
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out


def bucket_length(tokens: int, steps: int) -> int:
    """The padded length of a caption that reads ``tokens`` tokens: the next multiple of
    :data:`BUCKET_STEP`, at most ``steps``."""
    return min(steps, -(-tokens // BUCKET_STEP) * BUCKET_STEP)


class TeacherForcingBatches(_EpochBatches):
    """``((features, tokens), targets)``: one row per caption, captions of one length bucket per batch,
    ``startseq w_1 .. w_n`` in and ``w_1 .. w_n endseq`` out, both (rows, bucket length) and post-padded
    with 0. A batch holds ``batch_size`` images' worth of captions (``batch_size`` times the mean number of
    captions per image)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.row_images = np.asarray([image for image, captions in enumerate(self.captions) for _ in captions],
                                     dtype=np.int32)  # (rows,)
        self.row_ids = [ids for captions in self.captions for ids in captions]
        self.row_buckets = np.asarray([bucket_length(len(ids) - 1, self.steps) for ids in self.row_ids],
                                      dtype=np.int32)  # (rows,)
        per_image = len(self.row_ids) / max(1, len(self.images))
        self.rows_per_batch = max(1, round(self.batch_size * per_image))
        _, counts = np.unique(self.row_buckets, return_counts=True)
        self._num_batches = int(sum(math.ceil(count / self.rows_per_batch) for count in counts))

    @property
    def num_batches(self) -> int:
        return self._num_batches

    @property
    def words_per_epoch(self) -> int:
        """Predicted words (real targets) in one pass."""
        return sum(len(ids) - 1 for ids in self.row_ids)

    def plan(self) -> list[np.ndarray]:
        """This epoch's batches as arrays of row numbers: each bucket's rows in a random order (by seed and
        epoch) cut into batches, then the batches of all buckets in a random order. Without shuffling, the
        rows in their own order, the shortest bucket first."""
        def build(rng) -> list[np.ndarray]:
            batches = []
            for bucket in np.unique(self.row_buckets):
                members = np.flatnonzero(self.row_buckets == bucket)  # (rows in the bucket,)
                if self.shuffle:
                    members = rng.permutation(members)
                batches += [members[i:i + self.rows_per_batch] for i in range(0, len(members), self.rows_per_batch)]
            if self.shuffle:
                batches = [batches[i] for i in rng.permutation(len(batches))]
            return batches

        return self._order_of_epoch(build)

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        chosen = self.plan()[index]  # (rows,)
        unique, inverse = np.unique(self.row_images[chosen], return_inverse=True)
        image_features = self.features.get_many([self.images[i] for i in unique])  # (images, *feature shape)
        features = image_features[inverse.reshape(-1)].astype(np.float32)  # (rows, *feature shape)
        rows = [self.row_ids[i] for i in chosen]
        length = int(self.row_buckets[chosen].max())
        tokens = self._pad([ids[:-1] for ids in rows], length)  # (rows, bucket): startseq w_1 .. w_n
        targets = self._pad([ids[1:] for ids in rows], length)  # (rows, bucket): w_1 .. w_n endseq
        return (features, tokens), targets

    def signature(self):
        """Shapes and dtypes of one batch; None where batches differ."""
        return (((_feature_axes(self.features), "float32"), ((None, None), "int32")), ((None, None), "int32"))


class PrefixBatches(_EpochBatches):
    """``((features, prefixes), next_words)``: one row per (caption, position), ``batch_size`` rows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        samples = [(image, caption, position)
                   for image, captions in enumerate(self.captions)
                   for caption, ids in enumerate(captions)
                   for position in range(1, len(ids))]
        self.samples = np.asarray(samples, dtype=np.int32).reshape(-1, 3)  # (samples, 3): image, caption, k

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.samples) / self.batch_size)

    @property
    def words_per_epoch(self) -> int:
        return len(self.samples)

    def order(self) -> np.ndarray:
        """This epoch's samples, in a random order by (seed, epoch), or in their own order."""
        count = len(self.samples)
        return self._order_of_epoch(lambda rng: rng.permutation(count) if self.shuffle else np.arange(count))

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        chosen = self.samples[self.order()[index * self.batch_size:(index + 1) * self.batch_size]]
        unique, inverse = np.unique(chosen[:, 0], return_inverse=True)
        image_features = self.features.get_many([self.images[i] for i in unique])  # (images, feature_dim)
        features = image_features[inverse.reshape(-1)].astype(np.float32)  # (rows, feature_dim)
        prefixes = self._pad([self.captions[i][c][:k] for i, c, k in chosen], self.steps)  # (rows, steps)
        next_words = np.asarray([self.captions[i][c][k] for i, c, k in chosen], dtype=np.int32)  # (rows,)
        return (features, prefixes), next_words

    def signature(self):
        """Shapes and dtypes of one batch; None where batches differ."""
        return (((_feature_axes(self.features), "float32"), ((None, self.steps), "int32")), ((None,), "int32"))


def _feature_axes(features: FeatureSource) -> tuple:
    """(rows, dim) for vectors, (rows, grid rows, grid cols, channels) for grids, every axis None."""
    return (None,) * (1 + len(getattr(features, "shape", (0,))))


def fit_input(batches: TeacherForcingBatches | PrefixBatches):
    """What ``model.fit`` reads for ``batches``.

    On TensorFlow, Keras turns a PyDataset into a ``tf.data`` pipeline whose signature it infers from the
    first two batches: when both happen to share a caption length, that length is fixed and a later batch
    of another bucket is refused. So there the same batches go through ``tf.data`` with the signature
    declared by the batches themselves (the caption axis None). The other backends read the PyDataset
    directly, with no signature at all.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    def spec(entry):
        if isinstance(entry[1], str):
            return tf.TensorSpec(entry[0], entry[1])
        return tuple(spec(part) for part in entry)

    def generate():
        for index in range(len(batches)):
            yield batches[index]

    dataset = tf.data.Dataset.from_generator(generate, output_signature=spec(batches.signature()))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(2)
