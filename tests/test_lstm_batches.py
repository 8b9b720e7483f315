"""Teacher-forcing batches grouped by caption length, and the model that fits them.

Each batch is padded only to its bucket, every caption comes once per epoch in an order fixed by
(seed, epoch), padding never reaches the loss or the accuracy, and ``model.fit`` takes batches of
different lengths on every backend.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from captioner.config import LstmSettings, TrainingSettings  # noqa: E402
from captioner.data.prepared import PreparedItem  # noqa: E402
from captioner.data.text import Vocabulary  # noqa: E402
from captioner.training.datasets import (BUCKET_STEP, TeacherForcingBatches, bucket_length,  # noqa: E402
                                         fit_input)
from captioner.training.lstm_fit import make_training_model  # noqa: E402

pytestmark = pytest.mark.backend

WORDS = [f"w{i}" for i in range(20)]
VOCABULARY = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *WORDS], max_length=30)
STEPS = VOCABULARY.max_length - 1
FEATURE_DIM = 6


class Features:
    """Image features in memory: image ``img-N`` has the feature vector N, N, ..."""

    def get_many(self, names):
        return np.stack([np.full(FEATURE_DIM, float(name.split("-")[1]), np.float32) for name in names])


def make_items(images=40, seed=0):
    """Images with 3 captions each, from 1 to 28 words, so that the captions fall into four buckets."""
    rng = np.random.default_rng(seed)
    items = []
    for image in range(images):
        captions = tuple("startseq " + " ".join(rng.choice(WORDS, size=int(n))) + " endseq"
                         for n in rng.integers(1, STEPS, size=3))
        items.append(PreparedItem(image=f"img-{image}", captions=captions, references=()))
    return items


def make_batches(items=None, batch_size=4, seed=7, shuffle=True):
    return TeacherForcingBatches(items or make_items(), VOCABULARY, Features(), STEPS, batch_size, seed, shuffle)


def test_each_batch_is_padded_only_to_its_bucket():
    batches = make_batches()
    assert bucket_length(1, STEPS) == BUCKET_STEP and bucket_length(STEPS, STEPS) == STEPS
    assert bucket_length(BUCKET_STEP + 1, STEPS) == 2 * BUCKET_STEP
    padded_lengths = set()
    for index in range(len(batches)):
        (features, tokens), targets = batches[index]
        lengths = (tokens != 0).sum(axis=1)  # (rows,) tokens each caption reads
        bucket = tokens.shape[1]
        assert targets.shape == tokens.shape and ((targets != 0) == (tokens != 0)).all()
        padded_lengths.add(bucket)
        assert bucket == bucket_length(int(lengths.max()), STEPS)
        assert (lengths > bucket - BUCKET_STEP).all() and (lengths <= bucket).all()  # all of one bucket
        assert len(tokens) <= batches.rows_per_batch == 4 * 3  # 4 images' worth of captions
        assert features.shape == (len(tokens), FEATURE_DIM)
    assert padded_lengths == {8, 16, 24, STEPS}  # a handful of shapes, none of them longer than needed


def test_every_caption_comes_once_per_epoch_with_its_own_image():
    items = make_items()
    batches = make_batches(items)
    expected = sorted((int(item.image.split("-")[1]), tuple(VOCABULARY.encode(c)))
                      for item in items for c in item.captions)
    for epoch in (0, 3):
        batches.set_epoch(epoch)
        seen = []
        for index in range(len(batches)):
            (features, tokens), targets = batches[index]
            for row, length in enumerate((tokens != 0).sum(axis=1)):
                caption = (*tokens[row, :length], targets[row, length - 1])  # startseq .. w_n, then endseq
                np.testing.assert_array_equal(targets[row, :length - 1], tokens[row, 1:length])
                seen.append((int(features[row, 0]), tuple(int(t) for t in caption)))
        assert sorted(seen) == expected
    assert batches.words_per_epoch == sum(len(ids) - 1 for _, ids in expected)


def test_the_epoch_order_is_fixed_by_seed_and_epoch():
    def plan(batches, epoch):
        batches.set_epoch(epoch)
        return [rows.tolist() for rows in batches.plan()]

    first, again = make_batches(), make_batches()
    epoch_two = plan(first, 2)
    assert plan(again, 2) == epoch_two  # a resumed run sees the same batches
    assert plan(first, 1) != epoch_two and plan(first, 2) == epoch_two
    assert plan(make_batches(seed=8), 2) != epoch_two
    assert len([rows for rows in epoch_two if len(rows) < first.rows_per_batch]) <= 4  # one short batch a bucket
    unshuffled = make_batches(shuffle=False)
    assert plan(unshuffled, 0) == plan(unshuffled, 5)


SETTINGS = LstmSettings(vocab_size=len(VOCABULARY), max_length=VOCABULARY.max_length, feature_dim=FEATURE_DIM,
                        image_units=8, embedding_dim=8, lstm_units=8, dense_units=6, dropout=0.0)


TRAINING = TrainingSettings(generator="teacher", learning_rate=1e-2, seed=3)


def pad_to(tokens, length):
    out = np.zeros((len(tokens), length), np.int32)
    out[:, :tokens.shape[1]] = tokens
    return out


def test_bucketed_batches_train_exactly_like_fully_padded_ones():
    batches = make_batches()
    (features, tokens), targets = next(batch for batch in (batches[i] for i in range(len(batches)))
                                       if batch[0][1].shape[1] < STEPS)
    full = ([features, pad_to(tokens, STEPS)], pad_to(targets, STEPS))  # padded to the longest caption
    _, warm = make_training_model(SETTINGS, TRAINING)
    for _ in range(10):  # a few steps, so that some words are predicted right
        warm.train_on_batch([features, tokens], targets)
    weights = warm.get_weights()

    # the sequence model (what the bundle saves) predicts every step; score its real words by hand
    sequence_model, model = make_training_model(SETTINGS, TRAINING)
    model.set_weights(weights)  # the two views share their layers
    probabilities = np.asarray(sequence_model.predict_on_batch(full[0]))  # (rows, steps, vocab)
    real = full[1] != 0
    chosen = np.take_along_axis(probabilities, full[1][..., None], axis=-1)[..., 0]  # (rows, steps)
    expected_loss = -np.log(chosen[real]).mean()
    right = probabilities.argmax(-1) == full[1]  # (rows, steps)
    expected_accuracy = right[real].mean()
    assert 0 < expected_accuracy < 1 and right.mean() != expected_accuracy  # counting padding would show

    results = {}
    for name, batch in (("bucketed", ([features, tokens], targets)), ("padded", full)):
        _, model = make_training_model(SETTINGS, TRAINING)
        model.set_weights(weights)
        loss, accuracy = model.test_on_batch(*batch)
        assert loss == pytest.approx(expected_loss, rel=1e-4)
        assert accuracy == pytest.approx(expected_accuracy, abs=1e-6)  # real words only
        results[name] = [float(model.train_on_batch(*batch)[0]) for _ in range(3)], model.get_weights()
    assert results["bucketed"][0] == pytest.approx(results["padded"][0], rel=1e-4)
    for a, b in zip(results["bucketed"][1], results["padded"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fit_takes_batches_of_every_bucket_whatever_comes_first():
    # in a fixed order the short bucket comes first: its first two batches share one length, which is
    # what a signature inferred from the first batches would freeze
    batches = make_batches(shuffle=False)
    shapes = [batches[i][0][1].shape[1] for i in range(len(batches))]
    assert shapes[0] == shapes[1] and len(set(shapes)) == 4
    _, model = make_training_model(SETTINGS, TRAINING)
    history = model.fit(fit_input(batches), validation_data=fit_input(make_batches(make_items(8, 1), shuffle=False)),
                        epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2 and history.history["loss"][1] < history.history["loss"][0]
    assert 0 <= history.history["val_accuracy"][-1] <= 1
