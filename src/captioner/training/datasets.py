"""Batches for training the LSTM captioner, built one at a time (``keras.utils.PyDataset``).

Only token ids (small integer arrays) are held for the whole split; image features are read from the
feature store batch by batch, and padded arrays exist for one batch at a time.

* :class:`TeacherForcingBatches`: a batch is ``batch_size`` images with all their captions; each caption
  is one row, ``startseq w_1 .. w_n`` in, ``w_1 .. w_n endseq`` out, padding weighted 0.
* :class:`PrefixBatches`: the original generator: one row per (caption, position), a prefix
  ``startseq w_1 .. w_k`` in and the next word out.

The order is shuffled per epoch by a generator seeded with (seed, epoch), so an epoch's batches are the
same whether training ran straight through or was resumed.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import keras
import numpy as np

from captioner.data.prepared import PreparedItem
from captioner.data.text import Vocabulary


class FeatureSource(Protocol):
    def get_many(self, names: Sequence[str]) -> np.ndarray: ...


def encode_captions(items: Sequence[PreparedItem], vocabulary: Vocabulary, max_length: int) -> list[list[np.ndarray]]:
    """Token ids of every caption, per image, cut to ``max_length`` tokens."""
    return [[np.asarray(vocabulary.encode(caption)[:max_length], dtype=np.int32) for caption in item.captions]
            for item in items]


class _EpochBatches(keras.utils.PyDataset):
    """What both batch kinds share: the items, the feature store, the per-epoch shuffle."""

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
        self._order: np.ndarray | None = None

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` (0-based) from now on."""
        if epoch != self.epoch or self._order is None:
            self.epoch = epoch
            self._order = None

    def order(self, count: int) -> np.ndarray:
        if self._order is None:
            if self.shuffle:
                self._order = np.random.default_rng([self.seed, self.epoch]).permutation(count)
            else:
                self._order = np.arange(count)
        return self._order

    def _pad(self, rows: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(rows), self.steps), dtype=np.int32)  # (rows, steps), 0 = <pad>
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out


class TeacherForcingBatches(_EpochBatches):
    """``((features, tokens), targets, weights)``: one row per caption, ``batch_size`` images per batch."""

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    @property
    def words_per_epoch(self) -> int:
        """Predicted words (targets with weight 1) in one pass."""
        return sum(len(ids) - 1 for captions in self.captions for ids in captions)

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        chosen = self.order(len(self.images))[index * self.batch_size:(index + 1) * self.batch_size]
        rows, image_rows = [], []
        for image_index in chosen:
            for ids in self.captions[image_index]:
                rows.append(ids)
                image_rows.append(image_index)
        image_features = self.features.get_many([self.images[i] for i in chosen])  # (images, feature_dim)
        position = {int(image): n for n, image in enumerate(chosen)}
        features = image_features[[position[int(i)] for i in image_rows]].astype(np.float32)  # (rows, feature_dim)
        tokens = self._pad([ids[:-1] for ids in rows])  # (rows, steps): startseq w_1 .. w_n
        targets = self._pad([ids[1:] for ids in rows])  # (rows, steps): w_1 .. w_n endseq
        weights = (targets != 0).astype(np.float32)  # (rows, steps): padding counts for nothing
        return (features, tokens), targets, weights


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

    def __getitem__(self, index: int):
        if not 0 <= index < self.num_batches:
            raise IndexError(index)
        chosen = self.samples[self.order(len(self.samples))[index * self.batch_size:(index + 1) * self.batch_size]]
        unique, inverse = np.unique(chosen[:, 0], return_inverse=True)
        image_features = self.features.get_many([self.images[i] for i in unique])  # (images, feature_dim)
        features = image_features[inverse.reshape(-1)].astype(np.float32)  # (rows, feature_dim)
        prefixes = self._pad([self.captions[i][c][:k] for i, c, k in chosen])  # (rows, steps)
        next_words = np.asarray([self.captions[i][c][k] for i, c, k in chosen], dtype=np.int32)  # (rows,)
        return (features, prefixes), next_words
