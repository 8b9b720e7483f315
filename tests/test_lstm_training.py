"""Training the LSTM captioner on the small shapes set: batches, checkpoints, resuming, the bundle."""

import csv
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from captioner.config import TrainingSettings  # noqa: E402
from captioner.data.prepared import PreparedData  # noqa: E402
from captioner.errors import CaptionerError  # noqa: E402
from captioner.features import BackboneSpec, ensure_features  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import is_bundle, read_bundle_info, run_folder  # noqa: E402
from captioner.models.registry import load_captioner  # noqa: E402
from captioner.training.datasets import PrefixBatches, TeacherForcingBatches, bucket_length  # noqa: E402
from captioner.training.lstm import TrainingInterrupted, train_lstm  # noqa: E402
from captioner.training.plots import plot_history  # noqa: E402

SPEC = BackboneSpec("thumbnail", image_size=8)
TINY = {"image_units": 16, "embedding_dim": 16, "lstm_units": 16, "dense_units": 8}


@pytest.fixture(scope="module")
def prepared(prepared_shapes):
    return PreparedData(prepared_shapes)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def store(prepared, cache):
    return ensure_features(prepared, SPEC, cache_dir=cache, progress=False)


def test_teacher_forcing_batches_hold_whole_captions_padded_to_their_bucket(prepared, store):
    vocabulary = prepared.vocabulary
    steps = vocabulary.max_length - 1
    batches = TeacherForcingBatches(prepared.split("train"), vocabulary, store, steps, batch_size=4, seed=1,
                                    shuffle=True)
    seen = []
    for index in range(len(batches)):
        (features, tokens), targets = batches[index]
        assert features.shape == (len(tokens), store.dim) and tokens.shape == targets.shape
        assert tokens.shape[1] == bucket_length(int((tokens != 0).sum(axis=1).max()), steps)
        assert (tokens[:, 0] == vocabulary.start_id).all()
        for row_tokens, row_targets in zip(tokens, targets):
            length = int((row_targets != 0).sum())
            assert row_targets[length - 1] == vocabulary.end_id  # the last predicted word is endseq
            np.testing.assert_array_equal(row_targets[:length - 1], row_tokens[1:length])  # shifted by one
            assert (row_targets[length:] == 0).all() and (row_tokens[length:] == 0).all()
            seen.append((*row_tokens[:length], row_targets[length - 1]))
    # every caption of the split once per epoch, in an order fixed by (seed, epoch)
    expected = [tuple(vocabulary.encode(c)) for item in prepared.split("train") for c in item.captions]
    assert sorted(seen) == sorted(expected)
    assert batches.words_per_epoch == sum(len(ids) - 1 for ids in expected)

    def rows_of_epoch(epoch):
        batches.set_epoch(epoch)
        return [list(rows) for rows in batches.plan()]
    assert rows_of_epoch(0) == rows_of_epoch(0) and rows_of_epoch(0) != rows_of_epoch(1)


def test_prefix_batches_are_the_original_generator(prepared, store):
    vocabulary = prepared.vocabulary
    steps = vocabulary.max_length - 1
    items = prepared.split("val")[:2]
    batches = PrefixBatches(items, vocabulary, store, steps, batch_size=1000, seed=1, shuffle=False)
    (features, prefixes), next_words = batches[0]
    assert len(next_words) == sum(len(c.split()) - 1 for item in items for c in item.captions)
    first = vocabulary.encode(items[0].captions[0])
    for k in range(1, len(first)):  # startseq -> w1, startseq w1 -> w2, ..., the whole caption -> endseq
        np.testing.assert_array_equal(prefixes[k - 1][:k], first[:k])
        assert next_words[k - 1] == first[k]
    assert features.shape == (len(next_words), store.dim)


class InterruptAfter(keras.callbacks.Callback):
    """Stops training like Ctrl-C once ``epochs`` epochs are finished."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def bundle_weights(bundle):
    from captioner.models.keras.lstm import load_sequence_model

    return load_sequence_model(bundle / "model.keras").get_weights()


def test_an_interrupted_run_resumed_equals_an_uninterrupted_one(prepared, cache, tmp_path):
    training = TrainingSettings(epochs=4, batch_size=8, learning_rate=5e-3, seed=5, lr_patience=1, patience=10)
    straight = train_lstm(prepared.folder, tmp_path / "straight", training, TINY, SPEC, feature_cache=cache,
                          progress=False)

    interrupted = tmp_path / "resumed"
    with pytest.raises(TrainingInterrupted, match="after 2 of 4 epoch.*--resume"):
        train_lstm(prepared.folder, interrupted, training, TINY, SPEC, feature_cache=cache, progress=False,
                   callbacks=[InterruptAfter(2)])
    assert not interrupted.exists()  # no half-written bundle, only the hidden run folder
    state = json.loads((run_folder(interrupted) / "state.json").read_text())
    assert state["epoch"] == 2
    with pytest.raises(CaptionerError, match="--resume"):  # starting again would throw the run away
        train_lstm(prepared.folder, interrupted, training, TINY, SPEC, feature_cache=cache, progress=False)
    resumed = train_lstm(prepared.folder, interrupted, TrainingSettings(epochs=99), None, None, feature_cache=cache,
                         resume=True, progress=False)  # the run's own settings win

    assert is_bundle(resumed) and not run_folder(interrupted).exists()
    for a, b in zip(bundle_weights(straight), bundle_weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    rows = [list(csv.DictReader(open(path / "history.csv"))) for path in (straight, resumed)]
    assert len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(*rows):
        assert float(a["val_loss"]) == pytest.approx(float(b["val_loss"]), rel=1e-4)
        assert float(a["learning_rate"]) == pytest.approx(float(b["learning_rate"]))

    info = read_bundle_info(straight)
    assert info.kind == "lstm" and info.dataset == "shapes" and info.backbone == "thumbnail"
    assert set(info.settings) == {"lstm", "training", "data", "backbone"}
    assert info.settings["lstm"]["lstm_units"] == 16 and info.settings["training"]["epochs"] == 4
    assert info.metrics["val"]["loss"] > 0
    assert {p.name for p in straight.iterdir()} >= {"captioner.json", "model.keras", "vocab.json", "backbone.json",
                                                    "history.csv", "loss.png", "accuracy.png", "model.png"}


@pytest.mark.slow
def test_the_learning_rate_schedule_and_early_stopping_survive_a_resume(prepared, cache, tmp_path):
    # a learning rate too small to move float32 weights: val_loss stays put, so every epoch after the
    # first is a plateau; the rate is cut after epochs 2, 3 and 4 (patience 1), early stopping waits
    training = TrainingSettings(epochs=6, batch_size=16, learning_rate=1e-12, seed=5, lr_patience=1, min_lr=0.0,
                                patience=3)
    out = tmp_path / "plateau"
    with pytest.raises(TrainingInterrupted):
        train_lstm(prepared.folder, out, training, TINY, SPEC, feature_cache=cache, progress=False,
                   callbacks=[InterruptAfter(2)])
    state = json.loads((run_folder(out) / "state.json").read_text())
    assert state["callbacks"]["early_stopping"]["wait"] == 1 and state["learning_rate"] == pytest.approx(2e-13)
    train_lstm(prepared.folder, out, resume=True, feature_cache=cache, progress=False)
    history = list(csv.DictReader(open(out / "history.csv")))
    assert [float(row["learning_rate"]) for row in history] == pytest.approx([1e-12, 1e-12, 2e-13, 4e-14])
    assert len(history) == 4  # of 6: early stopping counted the plateau epochs before the interruption too


def test_bad_starts_are_refused_clearly(prepared, cache, tmp_path):
    with pytest.raises(CaptionerError, match="no interrupted run"):
        train_lstm(prepared.folder, tmp_path / "none", TrainingSettings(epochs=1), TINY, SPEC, feature_cache=cache,
                   resume=True, progress=False)
    with pytest.raises(ValueError, match="generator"):
        train_lstm(prepared.folder, tmp_path / "odd", TrainingSettings(epochs=1, generator="both"), TINY, SPEC,
                   feature_cache=cache, progress=False)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(CaptionerError, match="not an empty folder"):
        train_lstm(prepared.folder, tmp_path / "taken", TrainingSettings(epochs=1), TINY, SPEC, feature_cache=cache,
                   progress=False)


@pytest.fixture(scope="module")
def trained(prepared, cache, tmp_path_factory):
    """A small model trained for real on the shapes set, with the original's prefix generator."""
    out = tmp_path_factory.mktemp("models") / "shapes-prefix"
    training = TrainingSettings(epochs=6, batch_size=64, learning_rate=1e-2, generator="prefix", seed=2)
    return train_lstm(prepared.folder, out, training, {**TINY, "dropout": 0.1}, SPEC, feature_cache=cache, progress=False)


def test_prefix_generator_trains_a_model_that_captions(trained, prepared):
    from captioner.data.images import load_image

    history = list(csv.DictReader(open(trained / "history.csv")))
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    captioner = load_captioner(trained)
    images = [load_image(prepared.image_path(item.image)) for item in prepared.split("test")[:3]]
    captions = captioner.caption(images)
    vocabulary = set(prepared.vocabulary.tokens)
    for caption in captions:
        assert caption.text and set(caption.text.split()) <= vocabulary - {"<pad>", "<unk>", "startseq", "endseq"}


def test_beam_search_is_never_less_likely_than_greedy_on_a_trained_model(trained, store, prepared):
    captioner = load_captioner(trained)
    features = store.get_many([item.image for split in ("val", "test") for item in prepared.split(split)])
    greedy = captioner.caption_features(features, Decoding(max_length=12))
    beam = captioner.caption_features(features, Decoding.beam(3, max_length=12, length_penalty=0.0))
    assert all(b.score >= g.score - 1e-5 for b, g in zip(beam, greedy))
    assert any(b.score > g.score + 1e-5 for b, g in zip(beam, greedy)) or all(
        b.text == g.text for b, g in zip(beam, greedy))
    single = captioner.caption_features(features, Decoding.beam(1, max_length=12))
    assert [s.text for s in single] == [g.text for g in greedy]
    one_by_one = [captioner.caption_features(features[i:i + 1], Decoding.beam(3, max_length=12))[0]
                  for i in range(4)]
    assert [c.text for c in one_by_one] == [c.text for c in captioner.caption_features(
        features[:4], Decoding.beam(3, max_length=12))]


def test_learning_curves_are_drawn(tmp_path):
    history = {"loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.7, 1.5], "accuracy": [0.2, 0.3, 0.4],
               "val_accuracy": [0.1, 0.3, 0.35], "learning_rate": [1e-3] * 3}
    written = plot_history(history, tmp_path)
    assert [p.name for p in written] == ["loss.png", "accuracy.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in plot_history({"loss": [1.0]}, tmp_path / "only")] == ["loss.png"]
