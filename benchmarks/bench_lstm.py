"""LSTM captioner: training throughput (teacher forcing vs the original prefix generator) and caption
latency (one-step decoder vs the original's full ``model.predict`` per word).

Flickr8k-like sizes: 8,000 words, captions up to 35 tokens (about 12 on average), DenseNet201 features
(1920 values), the original layer sizes. Token data is synthetic: only the timing matters here.
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
MEAN_WORDS = 11  # words of a Flickr8k caption between startseq and endseq, on average
CAPTION_WORDS = 12  # words decoded per caption in the latency figure


def _settings():
    from captioner.config import LstmSettings

    return LstmSettings(vocab_size=VOCAB, max_length=MAX_LENGTH, feature_dim=FEATURE_DIM)


def _captions(rng, rows: int) -> list[np.ndarray]:
    """Token ids ``startseq w_1 .. w_n endseq`` with Flickr8k-like lengths."""
    lengths = np.clip(rng.poisson(MEAN_WORDS, size=rows), 3, MAX_LENGTH - 2)
    return [np.concatenate([[2], rng.integers(4, VOCAB, size=n), [3]]).astype(np.int32) for n in lengths]


def _pad(rows: list[np.ndarray], steps: int) -> np.ndarray:
    out = np.zeros((len(rows), steps), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row[:steps]
    return out


def training_throughput(quick: bool) -> dict:
    """Predicted words per second of training, same rows per batch for both generators."""
    import keras

    from captioner.models.lstm_network import build_prefix_model, build_sequence_model

    rng = np.random.default_rng(0)
    rows, batches = (64, 3) if quick else (320, 8)  # 320 rows = 64 images x 5 captions
    steps = MAX_LENGTH - 1
    keras.utils.set_random_seed(0)
    sequence_model = build_sequence_model(_settings(), seed=0)
    sequence_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    prefix_model = build_prefix_model(build_sequence_model(_settings(), seed=0))
    prefix_model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    teacher_data, prefix_data = [], []
    for _ in range(batches + 1):  # one warm-up batch each
        features = rng.normal(size=(rows, FEATURE_DIM)).astype(np.float32)
        captions = _captions(rng, rows)
        tokens, targets = _pad([c[:-1] for c in captions], steps), _pad([c[1:] for c in captions], steps)
        teacher_data.append(((features, tokens), targets, (targets != 0).astype(np.float32)))
        cuts = [int(rng.integers(1, len(c))) for c in captions]  # one (prefix -> next word) sample per row
        prefix_data.append(((features, _pad([c[:k] for c, k in zip(captions, cuts)], steps)),
                            np.array([c[k] for c, k in zip(captions, cuts)], dtype=np.int32)))

    def words_per_second(model, data, words_of) -> float:
        model.train_on_batch(*data[0][:2], sample_weight=data[0][2] if len(data[0]) == 3 else None)
        started, words = time.perf_counter(), 0
        for batch in data[1:]:
            model.train_on_batch(batch[0], batch[1], sample_weight=batch[2] if len(batch) == 3 else None)
            words += words_of(batch)
        return words / (time.perf_counter() - started)

    ours = words_per_second(sequence_model, teacher_data, lambda b: int(b[2].sum()))
    baseline = words_per_second(prefix_model, prefix_data, lambda b: len(b[1]))
    return figure("lstm training: predicted words/s, teacher forcing vs prefix generator", ours, baseline,
                  "words/s", True, f"{rows} rows per batch, vocab {VOCAB}, max length {MAX_LENGTH}, original sizes")


def caption_latency(quick: bool) -> dict:
    """Seconds for one caption, image features to text: step decoder vs full model.predict per word."""
    import keras

    from captioner.data.text import Vocabulary
    from captioner.models.base import Decoding
    from captioner.models.bundle import BundleInfo
    from captioner.models.lstm import LstmCaptioner
    from captioner.models.lstm_network import build_sequence_model

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
    words = len(hypothesis.tokens) + int(hypothesis.finished)

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
