"""The Keras side of LSTM training: the model to fit, the callbacks, checkpoints that make a run resumable.

After each epoch :class:`Checkpoint` writes ``epoch-NNNN.weights.h5`` (model and optimizer state) and,
when validation loss improved, ``best.weights.h5``, each through a temporary file; then the
:class:`~captioner.training.lstm_state.TrainingState` naming them, so the state on disk is always one
complete epoch. The callbacks' own counters (early stopping, learning-rate reduction) are stored there
too and put back on resume.
"""

from __future__ import annotations

import math
from pathlib import Path

import keras

from captioner.config import LstmSettings, TrainingSettings
from captioner.data.prepared import PreparedData
from captioner.files import atomic_path
from captioner.models.keras.lstm_network import build_prefix_model, build_sequence_model, build_teacher_model, real_words
from captioner.training.datasets import PrefixBatches, TeacherForcingBatches, fit_input
from captioner.progress import keras_verbosity
from captioner.training.lstm_state import TrainingState

BEST_WEIGHTS = "best.weights.h5"
# Each dropout layer's seed is (seed * LAYER_SEED_STRIDE + layer number, epoch * SEED_SPAN). The stride is
# a prime above any layer count, so two (seed, layer) pairs never share a first half: seed 1's layer 1 is
# not seed 0's layer 1010. The second half moves the random stream by SEED_SPAN draws per epoch.
LAYER_SEED_STRIDE = 1009
SEED_SPAN = 1_000_000  # dropout draws per epoch before two epochs' random streams could meet


def make_batches(prepared: PreparedData, store, settings, training: TrainingSettings):
    """Training and validation batches of the chosen generator."""
    kind = TeacherForcingBatches if training.generator == "teacher" else PrefixBatches
    steps = settings.max_length - 1  # every caption token but endseq is read (any family's settings)
    train = kind(prepared.split("train"), prepared.vocabulary, store, steps, training.batch_size, training.seed,
                 shuffle=True)
    val = kind(prepared.split("val"), prepared.vocabulary, store, steps, training.batch_size, training.seed,
               shuffle=False)
    return train, val


def make_training_model(settings: LstmSettings, training: TrainingSettings):
    """The sequence model (what the bundle saves) and the compiled model that is fitted.

    Teacher forcing fits :func:`build_teacher_model`, which predicts only the real words of a batch; its
    loss and accuracy compare those predictions with the real words of the padded targets, so both count
    real words only, with no weights or masks needed.
    """
    keras.utils.set_random_seed(training.seed)
    sequence_model = build_sequence_model(settings, seed=training.seed)
    optimizer = keras.optimizers.Adam(learning_rate=training.learning_rate)
    if training.generator == "teacher":
        model = build_teacher_model(sequence_model)
        # the number of words changes per batch: no fixed shapes for XLA to compile
        model.compile(optimizer=optimizer, loss=word_loss, jit_compile=False,
                      metrics=[keras.metrics.MeanMetricWrapper(word_accuracy, name="accuracy")])
    else:
        model = build_prefix_model(sequence_model)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return sequence_model, model


def word_loss(targets, probabilities):
    """Cross-entropy of each real word: targets (batch, steps) padded, probabilities (words, vocab)."""
    return keras.losses.sparse_categorical_crossentropy(real_words(targets), probabilities)  # (words,)


def word_accuracy(targets, probabilities):
    """1 where the most likely word is the real word, per real word: (words,)."""
    return keras.metrics.sparse_categorical_accuracy(real_words(targets), probabilities)  # (words,)


class EpochSetup(keras.callbacks.Callback):
    """At each epoch's start: the batches' shuffle order and every dropout layer's seed, from (seed, epoch)."""

    def __init__(self, batches, seed: int):
        super().__init__()
        self.batches = batches
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
        number = 0
        for layer in self.model.layers:
            generator = getattr(layer, "seed_generator", None)
            if generator is None:
                continue
            number += 1
            value = [(self.seed * LAYER_SEED_STRIDE + number) % 2**31, (epoch * SEED_SPAN) % 2**31]
            generator.state.assign(keras.ops.convert_to_tensor(value, dtype=generator.state.dtype))


class Checkpoint(keras.callbacks.Callback):
    """Writes the epoch's weights, the best weights and the training state; restores them on resume."""

    def __init__(self, work: Path, state: TrainingState, early_stopping, reduce_lr):
        super().__init__()
        self.work = work
        self.state = state
        self.early_stopping = early_stopping
        self.reduce_lr = reduce_lr

    def on_train_begin(self, logs=None):
        # runs after the schedules' own on_train_begin, which reset them
        saved = self.state.callbacks
        if saved:
            for callback, values in ((self.early_stopping, saved["early_stopping"]),
                                     (self.reduce_lr, saved["reduce_lr"])):
                for name, value in values.items():
                    setattr(callback, name, value)
            self.model.optimizer.learning_rate = self.state.learning_rate

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        state = self.state
        for name, value in logs.items():
            state.history.setdefault(name, []).append(float(value))
        val_loss = float(logs.get("val_loss", math.inf))
        if state.best_val_loss is None or val_loss < state.best_val_loss:
            self._save_weights(BEST_WEIGHTS)
            state.best_val_loss, state.best_epoch, state.best_weights = val_loss, epoch, BEST_WEIGHTS
        last = f"epoch-{epoch + 1:04d}.weights.h5"
        self._save_weights(last)
        previous = state.last_weights
        state.epoch, state.last_weights = epoch + 1, last
        state.learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        state.stopped = bool(self.model.stop_training)
        state.callbacks = {"early_stopping": _counters(self.early_stopping, "wait", "best", "best_epoch"),
                           "reduce_lr": _counters(self.reduce_lr, "wait", "best", "cooldown_counter")}
        state.save(self.work)
        if previous and previous != last:
            (self.work / previous).unlink(missing_ok=True)

    def _save_weights(self, name: str) -> None:
        with atomic_path(self.work / name) as temporary:
            self.model.save_weights(temporary)


def _counters(callback, *names: str) -> dict:
    """A callback's counters as plain JSON numbers (None stays None)."""
    return {name: None if getattr(callback, name) is None else float(getattr(callback, name)) for name in names}


def load_trained_sequence_model(settings: LstmSettings, training: TrainingSettings, weights: Path,
                                make_model=make_training_model, build=build_sequence_model):
    """A fresh, uncompiled sequence model holding the weights a run saved (from either generator);
    ``make_model`` and ``build`` are the family's (the LSTM's by default)."""
    sequence_model, model = make_model(settings, training)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    fresh = build(settings)
    fresh.set_weights(sequence_model.get_weights())
    return fresh


def fit(prepared: PreparedData, store, settings: LstmSettings, training: TrainingSettings, work: Path,
        state: TrainingState, progress: bool, extra_callbacks: list,
        make_model=make_training_model) -> TrainingState:
    """Train from ``state`` (epoch 0, or the last finished epoch) to the end; returns the final state.
    ``make_model(settings, training)`` gives the sequence model and the compiled model to fit."""
    train_batches, val_batches = make_batches(prepared, store, settings, training)
    _, model = make_model(settings, training)
    if state.last_weights:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(work / state.last_weights)
    if state.stopped or state.epoch >= training.epochs:
        return state
    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=training.patience, verbose=int(progress))
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=training.lr_patience,
                                                  factor=training.lr_factor, min_lr=training.min_lr,
                                                  verbose=int(progress))
    checkpoint = Checkpoint(work, state, early_stopping, reduce_lr)
    callbacks = [EpochSetup(train_batches, training.seed), keras.callbacks.TerminateOnNaN(), early_stopping,
                 reduce_lr, checkpoint, *extra_callbacks]
    model.fit(fit_input(train_batches), validation_data=fit_input(val_batches), epochs=training.epochs,
              initial_epoch=state.epoch, shuffle=False, callbacks=callbacks, verbose=keras_verbosity(progress))
    return checkpoint.state
