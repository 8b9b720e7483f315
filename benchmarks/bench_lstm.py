"""LSTM captioner: training throughput (teacher forcing vs the original prefix generator) and caption
latency (one-step decoder vs the original's full ``model.predict`` per word).

Flickr8k-like sizes: 8,000 words, captions up to 35 tokens with Flickr8k's length distribution (12.8 on
average), DenseNet201 features (1920 values), the original layer sizes. Words are random: only the timing
matters here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from run import figure  # noqa: E402

VOCAB = 8000
MAX_LENGTH = 35
FEATURE_DIM = 1920
CAPTION_WORDS = 12  # words decoded per caption in the latency figure
# Flickr8k's 40,460 captions after cleaning ("standard" preset), counted by tokens with startseq and
# endseq, from 3 tokens up: the training data below draws its caption lengths from this (mean 12.8).
FLICKR8K_TOKEN_COUNTS = [2, 25, 179, 475, 1181, 2664, 3438, 3912, 4442, 4555, 4197, 3706, 3086, 2508, 1770, 1365,
                         907, 696, 461, 285, 183, 137, 93, 66, 45, 25, 16, 12, 14, 5, 5, 1, 3, 0, 1]


def _settings():
    from captioner.config import LstmSettings

    return LstmSettings(vocab_size=VOCAB, max_length=MAX_LENGTH, feature_dim=FEATURE_DIM)


def _pad(rows: list[np.ndarray], steps: int) -> np.ndarray:
    out = np.zeros((len(rows), steps), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row[:steps]
    return out


class _RandomFeatures:
    """A feature store in memory: one random embedding per image."""

    def __init__(self, images: int, rng):
        self.table = rng.normal(size=(images, FEATURE_DIM)).astype(np.float32)

    def get_many(self, names):
        return self.table[[int(name) for name in names]]  # (n, feature_dim)


def _training_data(rng, images: int):
    """Images with 5 captions each, caption lengths drawn from Flickr8k's, words at random."""
    from captioner.data.prepared import PreparedItem
    from captioner.data.text import Vocabulary

    words = [f"w{i}" for i in range(VOCAB - 4)]
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *words], max_length=MAX_LENGTH)
    counts = np.asarray(FLICKR8K_TOKEN_COUNTS, dtype=np.float64)
    lengths = np.minimum(3 + rng.choice(len(counts), size=(images, 5), p=counts / counts.sum()), MAX_LENGTH)
    items = [PreparedItem(str(image), tuple("startseq " + " ".join(rng.choice(words, size=n - 2)) + " endseq"
                                            for n in lengths[image]), ()) for image in range(images)]
    return items, vocabulary, _RandomFeatures(images, rng)


def training_throughput(quick: bool) -> dict:
    """Predicted words per second of training, each generator with its own batches as training builds them
    (``captioner.training.datasets``) and its model as training compiles it, at the same rows per batch.

    Teacher forcing: length-bucketed captions, softmax only at real words; one whole epoch of the synthetic
    split is timed, its short last batch of each bucket included. Prefix generator: the original's
    (prefix -> next word) samples padded to the longest caption; its first full batches are timed.
    Each side first trains on one batch of every shape it will see (the traced functions are built then),
    and only real words are counted. Batches are built before the clock starts, for both sides alike.
    """
    from captioner.config import TrainingSettings
    from captioner.training.datasets import PrefixBatches, TeacherForcingBatches
    from captioner.training.lstm_fit import make_training_model

    rng = np.random.default_rng(0)
    images, batch_images, prefix_batches = (160, 16, 4) if quick else (640, 64, 8)
    items, vocabulary, features = _training_data(rng, images)
    steps = MAX_LENGTH - 1
    teacher = TeacherForcingBatches(items, vocabulary, features, steps, batch_images, seed=0, shuffle=True)
    rows = teacher.rows_per_batch  # captions per teacher batch = samples per prefix batch
    prefix = PrefixBatches(items, vocabulary, features, steps, rows, seed=0, shuffle=True)

    def words_per_second(generator: str, batches: list) -> float:
        _, model = make_training_model(_settings(), TrainingSettings(generator=generator, seed=0))
        shapes = {}
        for batch in batches:  # warm-up: one batch of each (rows, length) shape, a handful for teacher forcing
            shapes.setdefault(batch[0][1].shape, batch)
        for batch in [*shapes.values(), *batches[:2]]:
            model.train_on_batch(*batch)
        started, words = time.perf_counter(), 0
        for batch in batches:
            model.train_on_batch(*batch)
            words += int(np.count_nonzero(batch[1]))  # real words only: padding targets are 0
        return words / (time.perf_counter() - started)

    ours = words_per_second("teacher", [teacher[i] for i in range(len(teacher))])
    baseline = words_per_second("prefix", [prefix[i] for i in range(prefix_batches)])
    return figure("lstm training: predicted words/s, teacher forcing vs prefix generator", ours, baseline,
                  "words/s", True, f"{rows} captions (teacher) or samples (prefix) per batch, vocab {VOCAB}, "
                  f"max length {MAX_LENGTH}, Flickr8k caption lengths, original sizes")


def caption_latency(quick: bool) -> dict:
    """Seconds for one caption, image features to text: step decoder vs full model.predict per word."""
    import keras

    from captioner.data.text import Vocabulary
    from captioner.models.base import Decoding
    from captioner.models.bundle import BundleInfo
    from captioner.models.keras.lstm import LstmCaptioner
    from captioner.models.keras.lstm_network import build_sequence_model

    keras.utils.set_random_seed(1)
    model = build_sequence_model(_settings(), seed=1)
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *(f"w{i}" for i in range(VOCAB - 4))],
                            max_length=MAX_LENGTH)
    captioner = LstmCaptioner("bench", BundleInfo(kind="lstm", name="bench"), model, vocabulary)
    features = np.random.default_rng(1).normal(size=(1, FEATURE_DIM)).astype(np.float32)
    decoding = Decoding(method="greedy", max_length=CAPTION_WORDS)
    repeats = 3 if quick else 10

    captioner.decode_features(features, decoding)  # warm-up (traces the step function)
    started = time.perf_counter()
    for _ in range(repeats):
        (hypothesis,), = captioner.decode_features(features, decoding)
    ours = (time.perf_counter() - started) / repeats
    words = len(hypothesis.tokens) + 1  # steps taken: every word, then endseq

    def original_loop():  # the original: the whole prefix through the whole model, once per word
        tokens = [vocabulary.start_id]
        for _ in range(words):
            padded = _pad([np.array(tokens)], MAX_LENGTH - 1)
            probabilities = model.predict([features, padded], verbose=0)  # (1, steps, vocab)
            word = int(np.argmax(probabilities[0, len(tokens) - 1]))
            tokens.append(word)
            if word == vocabulary.end_id:
                break

    original_loop()
    started = time.perf_counter()
    for _ in range(repeats):
        original_loop()
    baseline = (time.perf_counter() - started) / repeats
    return figure("lstm caption latency: step decoder vs model.predict per word", ours, baseline, "s/caption",
                  False, f"{words} words, greedy, one image, vocab {VOCAB}")


def run(quick: bool) -> list[dict]:
    return [training_throughput(quick), caption_latency(quick)]
