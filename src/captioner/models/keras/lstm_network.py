"""The Keras graph of the CNN+LSTM captioner, in three views that share one set of layers.

The architecture is the original Flickr8k kernel's, with its "model modification":

    image embedding (feature_dim) -> Dense(256, relu) = image vector
    [image vector, Embedding(256)(startseq w_1 .. w_n)]  -> LSTM(256) -> Dropout(0.5)
    -> Add(image vector) -> Dense(128, relu) -> Dropout(0.5) -> Dense(vocab, softmax)

* :func:`build_sequence_model` (teacher forcing, and the model a bundle saves): the LSTM returns every
  step, so one pass over ``startseq w_1 .. w_n`` predicts ``w_1 .. w_n endseq``; post-padding (token 0)
  is masked.
* :func:`build_teacher_model` (what teacher forcing fits): the sequence model's layers on captions of
  any padded length, with the dense head and the softmax computed only at the steps that hold a word,
  not at the padding: (words in the batch, vocab) out, matched by :func:`real_words` of the targets.
* :func:`build_prefix_model` (the original generator): the same layers read a post-padded prefix and
  predict only the word after it.
* :func:`build_encoder_model` and :func:`build_step_model` (captioning): the image vector and the LSTM
  state after the image step, then one LSTM step per new word, so a caption of n words costs n steps.

Only ``keras.layers`` and ``keras.ops`` are used, so all of this runs on TensorFlow and on PyTorch.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from captioner.config import LstmSettings

# Layer names: the views find the shared layers by these.
IMAGE_DENSE = "image_dense"
WORD_EMBEDDING = "word_embedding"
LSTM = "lstm"
LSTM_DROPOUT = "lstm_dropout"
ADD_IMAGE = "add_image"
DENSE = "dense"
DENSE_DROPOUT = "dense_dropout"
WORD_PROBABILITIES = "word_probabilities"


@keras.saving.register_keras_serializable(package="captioner")
class DropFirstStep(layers.Layer):
    """Drops the first time step (the image step) of a sequence and of its mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs[:, 1:]  # (batch, steps - 1, units)

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[:, 1:]

    def compute_output_shape(self, input_shape):
        steps = None if input_shape[1] is None else input_shape[1] - 1
        return (input_shape[0], steps, *input_shape[2:])


@keras.saving.register_keras_serializable(package="captioner")
class LastStep(layers.Layer):
    """The output at the last unmasked time step of each sequence (post-padded input)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs[:, -1]  # (batch, units)
        last = ops.sum(ops.cast(mask, "int32"), axis=1) - 1  # (batch,)
        index = ops.reshape(last, (-1, 1, 1))  # (batch, 1, 1)
        return ops.take_along_axis(inputs, index, axis=1)[:, 0]  # (batch, units)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="captioner")
class WordSteps(layers.Layer):
    """The LSTM outputs at the steps that hold a word (token not 0), flattened in row-major order, and the
    image vector of each such step's caption."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # the padding is dropped here, so no mask goes further

    def call(self, inputs):
        outputs, image_vector, tokens = inputs  # (batch, steps, units), (batch, units), (batch, steps)
        units = outputs.shape[-1]
        flat = ops.reshape(outputs, (-1, units))  # (batch * steps, units)
        where = ops.nonzero(ops.reshape(tokens, (-1,)))[0]  # (words,) flat index of every word step
        rows = ops.floor_divide(where, ops.cast(ops.shape(tokens)[1], where.dtype))  # (words,) its caption
        return ops.take(flat, where, axis=0), ops.take(image_vector, rows, axis=0)  # (words, units) each

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shapes):
        outputs, image_vector, _ = input_shapes
        return (None, outputs[-1]), (None, image_vector[-1])


def real_words(targets):
    """The targets that are words, not padding (0), in the order :class:`WordSteps` lists the steps:
    (batch, steps) -> (words,). Post-padded targets are non-zero exactly where the tokens are."""
    flat = ops.reshape(targets, (-1,))  # (batch * steps,)
    return ops.take(flat, ops.nonzero(flat)[0], axis=0)  # (words,)


def check_settings(settings: LstmSettings) -> None:
    """Refuse sizes the architecture cannot take, with a message that says which."""
    if settings.vocab_size < 5:
        raise ValueError(f"vocab_size must be at least 5 (pad, unk, startseq, endseq, a word), not {settings.vocab_size}")
    if settings.max_length < 2:
        raise ValueError(f"max_length must be at least 2 tokens, not {settings.max_length}")
    if settings.embedding_dim != settings.image_units or settings.lstm_units != settings.image_units:
        raise ValueError("embedding_dim and lstm_units must equal image_units: the image vector is the LSTM's "
                         "first step and is added to its output")
    for name in ("feature_dim", "image_units", "dense_units"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")
    if not 0 <= settings.dropout < 1:
        raise ValueError("dropout must be in [0, 1)")


def sequence_length(settings: LstmSettings) -> int:
    """Tokens the sequence model reads: every caption token but the last (endseq is only predicted)."""
    return settings.max_length - 1


def _make_layers(settings: LstmSettings, seed: int | None) -> dict[str, layers.Layer]:
    return {
        IMAGE_DENSE: layers.Dense(settings.image_units, activation="relu", name=IMAGE_DENSE),
        WORD_EMBEDDING: layers.Embedding(settings.vocab_size, settings.embedding_dim, mask_zero=True,
                                         name=WORD_EMBEDDING),
        LSTM: layers.LSTM(settings.lstm_units, return_sequences=True, name=LSTM),
        LSTM_DROPOUT: layers.Dropout(settings.dropout, seed=seed, name=LSTM_DROPOUT),
        ADD_IMAGE: layers.Add(name=ADD_IMAGE),
        DENSE: layers.Dense(settings.dense_units, activation="relu", name=DENSE),
        DENSE_DROPOUT: layers.Dropout(settings.dropout, seed=None if seed is None else seed + 1,
                                      name=DENSE_DROPOUT),
        WORD_PROBABILITIES: layers.Dense(settings.vocab_size, activation="softmax", name=WORD_PROBABILITIES),
    }


def _lstm_steps(parts: dict, features, tokens):
    """The LSTM's outputs over [image vector, token embeddings], and the image vector."""
    image_vector = parts[IMAGE_DENSE](features)  # (batch, units)
    image_step = layers.Reshape((1, -1), name="image_step")(image_vector)  # (batch, 1, units)
    words = parts[WORD_EMBEDDING](tokens)  # (batch, steps, units), padding masked
    steps = layers.Concatenate(axis=1, name="image_then_words")([image_step, words])  # (batch, 1 + steps, units)
    return parts[LSTM](steps), image_vector, image_step  # (batch, 1 + steps, units)


def _head(parts: dict, lstm_out, image):
    """Dropout, the added image vector, Dense(128), Dropout, softmax over the vocabulary."""
    x = parts[LSTM_DROPOUT](lstm_out)
    x = parts[ADD_IMAGE]([x, image])  # the "model modification"
    x = parts[DENSE](x)
    x = parts[DENSE_DROPOUT](x)
    return parts[WORD_PROBABILITIES](x)  # (..., vocab)


def build_sequence_model(settings: LstmSettings, seed: int | None = None) -> keras.Model:
    """Teacher forcing: inputs ``features`` (batch, feature_dim) and ``tokens`` (batch, max_length - 1),
    post-padded ``startseq w_1 .. w_n``; output (batch, max_length - 1, vocab): ``w_1 .. w_n endseq``."""
    check_settings(settings)
    parts = _make_layers(settings, seed)
    features = keras.Input((settings.feature_dim,), name="features")
    tokens = keras.Input((sequence_length(settings),), dtype="int32", name="tokens")
    lstm_out, _, image_step = _lstm_steps(parts, features, tokens)
    words_out = DropFirstStep(name="word_steps")(lstm_out)  # (batch, steps, units)
    probabilities = _head(parts, words_out, image_step)  # (batch, steps, vocab)
    return keras.Model([features, tokens], probabilities, name="lstm_captioner")


def shared_layers(model: keras.Model) -> dict[str, layers.Layer]:
    """The trained layers of a sequence (or prefix) model, by name."""
    return {name: model.get_layer(name) for name in
            (IMAGE_DENSE, WORD_EMBEDDING, LSTM, LSTM_DROPOUT, ADD_IMAGE, DENSE, DENSE_DROPOUT, WORD_PROBABILITIES)}


def build_teacher_model(sequence_model: keras.Model) -> keras.Model:
    """Teacher forcing as it is fitted: ``features`` (batch, feature_dim) and post-padded ``tokens``
    (batch, any length) -> probabilities of the next word at every step that holds a word, flattened in
    row-major order (words, vocab), to be scored against :func:`real_words` of the (batch, steps) targets.
    Padding costs only LSTM steps: the dense layers and the softmax over the vocabulary never see it.
    Shares every weight with ``sequence_model``."""
    parts = shared_layers(sequence_model)
    features = keras.Input((sequence_model.inputs[0].shape[1],), name="features")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    lstm_out, image_vector, _ = _lstm_steps(parts, features, tokens)
    words_out = DropFirstStep(name="word_steps")(lstm_out)  # (batch, steps, units)
    word_steps, word_images = WordSteps(name="word_only")([words_out, image_vector, tokens])  # (words, units)
    probabilities = _head(parts, word_steps, word_images)  # (words, vocab)
    return keras.Model([features, tokens], probabilities, name="lstm_captioner_teacher")


def build_prefix_model(sequence_model: keras.Model) -> keras.Model:
    """The original generator's view: ``features`` and a post-padded prefix ``startseq w_1 .. w_k``
    (batch, max_length - 1) -> probabilities of the next word (batch, vocab). Shares every weight."""
    parts = shared_layers(sequence_model)
    features = keras.Input((sequence_model.inputs[0].shape[1],), name="features")
    tokens = keras.Input((sequence_model.inputs[1].shape[1],), dtype="int32", name="prefix")
    lstm_out, image_vector, _ = _lstm_steps(parts, features, tokens)
    last = LastStep(name="last_step")(lstm_out)  # (batch, units)
    probabilities = _head(parts, last, image_vector)  # (batch, vocab)
    return keras.Model([features, tokens], probabilities, name="lstm_captioner_prefix")


def build_encoder_model(sequence_model: keras.Model) -> keras.Model:
    """Image features (batch, feature_dim) -> image vector, and LSTM state (h, c) after the image step."""
    parts = shared_layers(sequence_model)
    features = keras.Input((sequence_model.inputs[0].shape[1],), name="features")
    image_vector = parts[IMAGE_DENSE](features)  # (batch, units)
    cell = parts[LSTM].cell
    zeros = ops.zeros_like(image_vector)  # (batch, units)
    _, (h, c) = cell(image_vector, [zeros, zeros], training=False)  # (batch, units) each
    return keras.Model(features, [image_vector, h, c], name="lstm_image_encoder")


def build_step_model(sequence_model: keras.Model) -> keras.Model:
    """One decoding step: token (batch,), h, c, image vector (batch, units) -> log-probabilities of the
    next word (batch, vocab), new h, new c. Dropout is off, as in prediction."""
    parts = shared_layers(sequence_model)
    units = parts[LSTM].cell.units
    token = keras.Input((), dtype="int32", name="token")
    h = keras.Input((units,), name="h")
    c = keras.Input((units,), name="c")
    image_vector = keras.Input((units,), name="image_vector")
    # The embedding table looked up directly: a single token needs no padding mask.
    word = ops.take(parts[WORD_EMBEDDING].embeddings, token, axis=0)  # (batch, units)
    out, (new_h, new_c) = parts[LSTM].cell(word, [h, c], training=False)  # (batch, units)
    x = parts[ADD_IMAGE]([out, image_vector])
    x = parts[DENSE](x)  # (batch, dense_units)
    probabilities = parts[WORD_PROBABILITIES](x)  # (batch, vocab)
    log_probs = ops.log(ops.maximum(probabilities, 1e-30))  # (batch, vocab)
    return keras.Model([token, h, c, image_vector], [log_probs, new_h, new_c], name="lstm_step_decoder")
