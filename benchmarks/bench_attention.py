"""Attention captioner against the LSTM kind: training throughput (teacher forcing, predicted words/s) and
caption latency with beam 3, each measured in the same run on the same synthetic Flickr8k-like data.

Sizes: 8,000 words, Flickr8k caption lengths, DenseNet201 features: 7 x 7 x 1920 grids for attention (the
paper's soft attention, default sizes: embedding 256, LSTM 512, attention 256), 1920-value vectors for the
LSTM (the original's sizes). Attention does more per word (49 places scored, a context of 1920 values), so
its ratio is below 1: the figure says how much a word of attention costs against a word of the LSTM.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_lstm import FEATURE_DIM, MAX_LENGTH, VOCAB, _settings, _training_data  # noqa: E402
from run import figure  # noqa: E402

GRID = (7, 7)  # DenseNet201's last convolutional map at 224 px
CAPTION_WORDS = 12  # most words decoded per caption in the latency figure


def _attention_settings():
    from captioner.config import AttentionSettings

    return AttentionSettings(vocab_size=VOCAB, max_length=MAX_LENGTH, grid_cells=GRID[0] * GRID[1],
                             annotation_dim=FEATURE_DIM)


class _Grids:
    """A feature store in memory: each image's grid is its vector at every place plus noise."""

    def __init__(self, vectors, rng):
        self.vectors = vectors
        self.noise = rng.normal(scale=0.1, size=(*GRID, FEATURE_DIM)).astype(np.float32)

    def get_many(self, names):
        return self.vectors.get_many(names)[:, None, None, :] + self.noise  # (n, 7, 7, 1920)


def training_throughput(quick: bool) -> dict:
    """Predicted words per second of teacher-forcing training, attention vs LSTM, the same captions in the
    same length-bucketed batches (``captioner.training.datasets``), each model compiled as training does."""
    from captioner.config import TrainingSettings
    from captioner.training.attention import make_training_model as attention_model
    from captioner.training.datasets import TeacherForcingBatches
    from captioner.training.lstm_fit import make_training_model as lstm_model

    rng = np.random.default_rng(0)
    images, batch_images = (48, 8) if quick else (192, 32)
    items, vocabulary, vectors = _training_data(rng, images)
    grids = _Grids(vectors, rng)

    def words_per_second(make_model, settings, features) -> float:
        batches = TeacherForcingBatches(items, vocabulary, features, MAX_LENGTH - 1, batch_images, seed=0,
                                        shuffle=True)
        batches = [batches[i] for i in range(len(batches))]
        _, model = make_model(settings, TrainingSettings(seed=0))
        shapes = {}
        for batch in batches:  # warm-up: one batch of each (rows, length) shape
            shapes.setdefault(batch[0][1].shape, batch)
        for batch in shapes.values():
            model.train_on_batch(*batch)
        started, words = time.perf_counter(), 0
        for batch in batches:
            model.train_on_batch(*batch)
            words += int(np.count_nonzero(batch[1]))
        return words / (time.perf_counter() - started)

    ours = words_per_second(attention_model, _attention_settings(), grids)
    baseline = words_per_second(lstm_model, _settings(), vectors)
    return figure("attention training: predicted words/s against the LSTM kind (teacher forcing both)", ours,
                  baseline, "words/s", True, f"captions of {batch_images} images per batch, vocab {VOCAB}, "
                  "Flickr8k caption lengths, 7x7x1920 grids vs 1920-value vectors, default sizes")


def caption_latency(quick: bool) -> dict:
    """Seconds for one caption with beam 3, image features to text (attention maps included), attention vs LSTM."""
    import keras

    from captioner.data.text import Vocabulary
    from captioner.models.keras.attention import AttentionCaptioner
    from captioner.models.keras.attention_network import build_sequence_model as attention_network
    from captioner.models.base import Decoding
    from captioner.models.bundle import BundleInfo
    from captioner.models.keras.lstm import LstmCaptioner
    from captioner.models.keras.lstm_network import build_sequence_model as lstm_network

    keras.utils.set_random_seed(1)
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *(f"w{i}" for i in range(VOCAB - 4))],
                            max_length=MAX_LENGTH)
    attention = AttentionCaptioner("bench", BundleInfo(kind="attention", name="bench"),
                                   attention_network(_attention_settings(), seed=1), vocabulary)
    lstm = LstmCaptioner("bench", BundleInfo(kind="lstm", name="bench"), lstm_network(_settings(), seed=1),
                         vocabulary)
    rng = np.random.default_rng(1)
    grid = rng.normal(size=(1, *GRID, FEATURE_DIM)).astype(np.float32)
    vector = grid.mean(axis=(1, 2))  # (1, 1920)
    decoding = Decoding.beam(3, max_length=CAPTION_WORDS)
    repeats = 2 if quick else 6

    def seconds(captioner, features) -> float:
        captioner.caption_features(features, decoding)  # warm-up (traces the step function)
        started = time.perf_counter()
        for _ in range(repeats):
            captioner.caption_features(features, decoding)
        return (time.perf_counter() - started) / repeats

    ours, baseline = seconds(attention, grid), seconds(lstm, vector)
    return figure("attention caption latency, beam 3, against the LSTM kind", ours, baseline, "s/caption", False,
                  f"one image, at most {CAPTION_WORDS} words, vocab {VOCAB}, random weights, maps included")


def run(quick: bool) -> list[dict]:
    return [training_throughput(quick), caption_latency(quick)]
