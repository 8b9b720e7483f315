"""Training the attention captioner into a model bundle (``captioner train attention``).

The run is the LSTM's (:func:`captioner.training.lstm.train_family`): teacher forcing over length-bucketed
batches, checkpoints after every epoch, resume equal to an uninterrupted run, early stopping, the
learning-rate schedule, the curves. What differs: the features are backbone grids (``grid=True``, cached
in float16), the network is :mod:`captioner.models.keras.attention_network`, and the fitted loss adds the doubly
stochastic attention penalty to the words' cross-entropy.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Sequence

from captioner.config import AttentionSettings, TrainingSettings
from captioner.training.lstm import ModelFamily, train_family


def _derived(settings: AttentionSettings, vocabulary, store, spec) -> AttentionSettings:
    rows, cols, channels = store.shape
    return replace(settings, vocab_size=len(vocabulary), max_length=vocabulary.max_length, grid_cells=rows * cols,
                   annotation_dim=channels, backbone=spec.name, image_size=spec.size)


ATTENTION_FAMILY = ModelFamily("attention", AttentionSettings, True, _derived, "captioner.training.attention",
                               "captioner.models.keras.attention", generators=("teacher",))


def build_sequence_model(settings: AttentionSettings, seed: int | None = None):
    from captioner.models.keras.attention_network import build_sequence_model as build

    return build(settings, seed)


def make_training_model(settings: AttentionSettings, training: TrainingSettings):
    """The sequence model (what the bundle saves) and the compiled teacher-forcing model that is fitted."""
    import keras

    from captioner.models.keras.attention_network import build_teacher_model
    from captioner.training.lstm_fit import word_accuracy, word_loss

    keras.utils.set_random_seed(training.seed)
    sequence_model = build_sequence_model(settings, seed=training.seed)
    model = build_teacher_model(sequence_model, settings.penalty)
    # the number of words changes per batch: no fixed shapes for XLA to compile
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=training.learning_rate), loss=word_loss,
                  jit_compile=False, metrics=[keras.metrics.MeanMetricWrapper(word_accuracy, name="accuracy")])
    return sequence_model, model


def train_attention(prepared_dir: str | os.PathLike, out_dir: str | os.PathLike,
                    training: TrainingSettings | None = None, architecture: dict | AttentionSettings | None = None,
                    backbone_spec=None, feature_cache: str | os.PathLike | None = None, resume: bool = False,
                    progress: bool = True, callbacks: Sequence = ()):
    """Train an attention captioner on a prepared folder and write the bundle ``out_dir``; returns its path.

    ``architecture`` overrides architecture sizes (``lstm_units``, ``attention_units``, ``penalty``, ...); the
    vocabulary, caption length and grid come from the data. ``backbone_spec`` is a
    :class:`captioner.features.BackboneSpec` (DenseNet201 with ImageNet weights when None), used as a grid.
    Everything else is as :func:`captioner.training.lstm.train_lstm`.
    """
    return train_family(ATTENTION_FAMILY, prepared_dir, out_dir, training, architecture, backbone_spec, feature_cache,
                        resume, progress, callbacks)
