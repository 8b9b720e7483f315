"""The Keras graph of the attention captioner ("Show, Attend and Tell", Xu et al. 2015, soft attention).

The image is a grid of annotation vectors a_1 .. a_L (the backbone's last convolutional map, L = rows x
cols). At each step t, with h the LSTM state before it:

    e_ti   = v . tanh(W_a a_i + p_i + W_h h)        additive attention scores        (L,)
    alpha_t = softmax(e_t)                           where the model looks            (L,), sums to 1
    z_t    = sigmoid(w_b . h) * sum_i alpha_ti a_i   the context, scaled by the gate beta
    h, c   = LSTM([E y_{t-1}, z_t], (h, c))
    p(y_t) = softmax(W_o dropout(tanh(L_h h + L_z z_t + E y_{t-1})))   the deep output layer

p_i is a learned vector per place, so the model can prefer places by where they are (reading order, say)
as well as by what they hold; the paper's annotations carried position only implicitly. h and c start
from tanh(Dense(mean_i a_i)). Training adds the doubly stochastic penalty
lambda * sum_i (1 - sum_t alpha_ti)^2 per caption (over the steps that hold a word), which asks the
model to look at every place about as much over a whole caption.

Views sharing one set of layers:

* :func:`build_sequence_model` (the model a bundle saves): ``grid`` (batch, rows, cols, channels) and
  ``tokens`` (batch, steps) post-padded ``startseq w_1 .. w_n`` -> probabilities of ``w_1 .. w_n endseq``
  (batch, steps, vocab) and the attention of every step (batch, steps, L). The attention at step k is
  where the model looked to predict word k + 1, so these are the maps of a caption's words.
* :func:`build_teacher_model` (what is fitted): the same steps, the softmax only at the steps that hold a
  word (words, vocab), the penalty added as a layer loss.
* :func:`build_encoder_model` and :func:`build_step_model` (captioning): annotations, their projection
  and the initial state once per image, then one step per word.

Only ``keras.layers`` and ``keras.ops`` are used, so this runs on TensorFlow and on PyTorch.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from captioner.config import AttentionSettings

WORD_EMBEDDING = "word_embedding"
DECODER = "soft_attention_decoder"
OUT_HIDDEN = "out_hidden"  # L_h
OUT_CONTEXT = "out_context"  # L_z
OUT_DROPOUT = "out_dropout"
WORD_PROBABILITIES = "word_probabilities"
PENALTY = "attention_penalty"


@keras.saving.register_keras_serializable(package="captioner")
class SoftAttentionDecoder(layers.Layer):
    """The recurrent core: initial state from the mean annotation, soft attention with the gate beta, the LSTM.

    ``call([annotations (batch, L, D), words (batch, steps, E)])`` runs every step (``keras.ops.scan``) and
    returns the LSTM outputs (batch, steps, units), the gated contexts (batch, steps, D) and the attention
    weights (batch, steps, L). :meth:`start` and :meth:`step` are the same computation one step at a time.
    """

    def __init__(self, units: int, attention_units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.attention_units = attention_units
        self.init_h = layers.Dense(units, activation="tanh", name="init_h")
        self.init_c = layers.Dense(units, activation="tanh", name="init_c")
        self.attend_annotations = layers.Dense(attention_units, name="attend_annotations")  # W_a (and bias)
        self.attend_hidden = layers.Dense(attention_units, use_bias=False, name="attend_hidden")  # W_h
        self.attention_score = layers.Dense(1, use_bias=False, name="attention_score")  # v
        self.gate = layers.Dense(1, activation="sigmoid", name="context_gate")  # beta
        self.cell = layers.LSTMCell(units, name="lstm_cell")

    def build(self, input_shapes):
        annotations, words = input_shapes
        places, dim, embedding = annotations[1], annotations[-1], words[-1]
        self.places = self.add_weight(shape=(places, self.attention_units), initializer="zeros", name="places")  # p
        self.init_h.build((None, dim))
        self.init_c.build((None, dim))
        self.attend_annotations.build((None, None, dim))
        self.attend_hidden.build((None, self.units))
        self.attention_score.build((None, None, self.attention_units))
        self.gate.build((None, self.units))
        self.cell.build((None, embedding + dim))

    def start(self, annotations):
        """Per image, once: the projected annotations (batch, L, A) and the initial h, c (batch, units)."""
        mean = ops.mean(annotations, axis=1)  # (batch, D)
        projected = self.attend_annotations(annotations) + self.places  # (batch, L, A)
        return projected, self.init_h(mean), self.init_c(mean)

    def attend(self, annotations, projected, h):
        """Where to look from state h: attention weights (batch, L) and the gated context (batch, D)."""
        hidden = ops.expand_dims(self.attend_hidden(h), 1)  # (batch, 1, A)
        scores = self.attention_score(ops.tanh(projected + hidden))[..., 0]  # (batch, L)
        alpha = ops.softmax(scores, axis=-1)  # (batch, L)
        context = ops.sum(ops.expand_dims(alpha, -1) * annotations, axis=1)  # (batch, D)
        return alpha, self.gate(h) * context  # (batch, L), (batch, D)

    def step(self, word, h, c, annotations, projected):
        """One word: embedding (batch, E) and state -> new h, c (batch, units), context (batch, D), alpha (batch, L)."""
        alpha, context = self.attend(annotations, projected, h)
        out, (h, c) = self.cell(ops.concatenate([word, context], axis=-1), [h, c], training=False)
        return out, c, context, alpha

    def call(self, inputs):
        annotations, words = inputs  # (batch, L, D), (batch, steps, E)
        projected, h, c = self.start(annotations)
        context = ops.zeros_like(annotations[:, 0])  # (batch, D)
        alpha = ops.zeros_like(annotations[:, :, 0])  # (batch, L)

        def one_step(carry, word):  # word: (batch, E)
            h, c, _, _ = carry
            carry = self.step(word, h, c, annotations, projected)
            return carry, carry  # TensorFlow's scan emits what it carries

        _, (hs, _, contexts, alphas) = ops.scan(one_step, (h, c, context, alpha),
                                                ops.transpose(words, (1, 0, 2)))  # time first
        return (ops.transpose(hs, (1, 0, 2)), ops.transpose(contexts, (1, 0, 2)),  # (batch, steps, units | D)
                ops.transpose(alphas, (1, 0, 2)))  # (batch, steps, L)

    def compute_output_shape(self, input_shapes):
        annotations, words = input_shapes
        batch, steps = words[0], words[1]
        return (batch, steps, self.units), (batch, steps, annotations[-1]), (batch, steps, annotations[1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "attention_units": self.attention_units}


@keras.saving.register_keras_serializable(package="captioner")
class AttentionPenalty(layers.Layer):
    """Adds lambda * sum_i (1 - sum_t alpha_ti)^2, averaged over captions, counting only word steps.

    ``call([outputs, alphas, tokens])`` returns ``outputs`` unchanged: the layer sits on the path to the
    model's output, because a functional model runs only the layers its outputs depend on."""

    def __init__(self, weight: float, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, inputs):
        outputs, alphas, tokens = inputs  # (batch, steps, units), (batch, steps, L), (batch, steps)
        if self.weight:
            words = ops.expand_dims(ops.cast(ops.not_equal(tokens, 0), alphas.dtype), -1)  # (batch, steps, 1)
            coverage = ops.sum(alphas * words, axis=1)  # (batch, L)
            self.add_loss(self.weight * ops.mean(ops.sum(ops.square(1.0 - coverage), axis=-1)))
        return outputs

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="captioner")
class WordRows(layers.Layer):
    """The steps that hold a word (token not 0), flattened in row-major order: (batch, steps, F) -> (words, F)."""

    def call(self, inputs):
        values, tokens = inputs  # (batch, steps, F), (batch, steps)
        flat = ops.reshape(values, (-1, values.shape[-1]))  # (batch * steps, F)
        return ops.take(flat, ops.nonzero(ops.reshape(tokens, (-1,)))[0], axis=0)  # (words, F)

    def compute_output_shape(self, input_shapes):
        return (None, input_shapes[0][-1])


def check_settings(settings: AttentionSettings) -> None:
    """Refuse sizes the architecture cannot take, with a message that says which."""
    if settings.vocab_size < 5:
        raise ValueError(f"vocab_size must be at least 5 (pad, unk, startseq, endseq, a word), not {settings.vocab_size}")
    if settings.max_length < 2:
        raise ValueError(f"max_length must be at least 2 tokens, not {settings.max_length}")
    for name in ("grid_cells", "annotation_dim", "embedding_dim", "lstm_units", "attention_units"):
        if getattr(settings, name) < 1:
            raise ValueError(f"{name} must be at least 1")
    if not 0 <= settings.dropout < 1:
        raise ValueError("dropout must be in [0, 1)")
    if settings.penalty < 0:
        raise ValueError("the attention penalty must not be negative")


def _make_layers(settings: AttentionSettings, seed: int | None) -> dict[str, layers.Layer]:
    return {
        WORD_EMBEDDING: layers.Embedding(settings.vocab_size, settings.embedding_dim, name=WORD_EMBEDDING),
        DECODER: SoftAttentionDecoder(settings.lstm_units, settings.attention_units, name=DECODER),
        OUT_HIDDEN: layers.Dense(settings.embedding_dim, name=OUT_HIDDEN),
        OUT_CONTEXT: layers.Dense(settings.embedding_dim, use_bias=False, name=OUT_CONTEXT),
        OUT_DROPOUT: layers.Dropout(settings.dropout, seed=seed, name=OUT_DROPOUT),
        WORD_PROBABILITIES: layers.Dense(settings.vocab_size, activation="softmax", name=WORD_PROBABILITIES),
    }


def shared_layers(model: keras.Model) -> dict[str, layers.Layer]:
    """The trained layers of a sequence model, by name."""
    return {name: model.get_layer(name) for name in
            (WORD_EMBEDDING, DECODER, OUT_HIDDEN, OUT_CONTEXT, OUT_DROPOUT, WORD_PROBABILITIES)}


def _inputs(grid_side: tuple[int, int], annotation_dim: int):
    grid = keras.Input((*grid_side, annotation_dim), name="grid")
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    return grid, tokens


def _annotations(grid):
    rows, cols, dim = grid.shape[1:]
    return layers.Reshape((rows * cols, dim), name="annotations")(grid)  # (batch, L, D)


def _deep_output(parts: dict, h, context, word):
    """tanh(L_h h + L_z z + E y) (..., E): what the softmax reads, before dropout."""
    mixed = layers.Add(name="deep_output")([parts[OUT_HIDDEN](h), parts[OUT_CONTEXT](context), word])
    return layers.Activation("tanh", name="deep_output_tanh")(mixed)


def grid_side(settings: AttentionSettings) -> tuple[int, int]:
    """Rows and cols of a square grid of ``settings.grid_cells`` places."""
    side = round(settings.grid_cells ** 0.5)
    if side * side != settings.grid_cells:
        raise ValueError(f"grid_cells must be a square number (rows = cols), not {settings.grid_cells}")
    return side, side


def build_sequence_model(settings: AttentionSettings, seed: int | None = None) -> keras.Model:
    """``grid`` and post-padded ``tokens`` -> next-word probabilities (batch, steps, vocab) and the attention
    weights of every step (batch, steps, L)."""
    check_settings(settings)
    parts = _make_layers(settings, seed)
    grid, tokens = _inputs(grid_side(settings), settings.annotation_dim)
    words = parts[WORD_EMBEDDING](tokens)  # (batch, steps, E)
    hs, contexts, alphas = parts[DECODER]([_annotations(grid), words])
    features = parts[OUT_DROPOUT](_deep_output(parts, hs, contexts, words))  # (batch, steps, E)
    probabilities = parts[WORD_PROBABILITIES](features)  # (batch, steps, vocab)
    return keras.Model([grid, tokens], [probabilities, alphas], name="attention_captioner")


def build_teacher_model(sequence_model: keras.Model, penalty: float) -> keras.Model:
    """What teacher forcing fits: probabilities at the steps that hold a word only (words, vocab), to be
    scored against the real words of the padded targets; the attention penalty is a layer loss. Shares
    every weight with ``sequence_model``."""
    parts = shared_layers(sequence_model)
    grid, tokens = _inputs(sequence_model.inputs[0].shape[1:3], sequence_model.inputs[0].shape[3])
    words = parts[WORD_EMBEDDING](tokens)  # (batch, steps, E)
    hs, contexts, alphas = parts[DECODER]([_annotations(grid), words])
    hs = AttentionPenalty(penalty, name=PENALTY)([hs, alphas, tokens])
    mixed = _deep_output(parts, hs, contexts, words)  # (batch, steps, E)
    features = parts[OUT_DROPOUT](WordRows(name="word_rows")([mixed, tokens]))  # (words, E)
    return keras.Model([grid, tokens], parts[WORD_PROBABILITIES](features), name="attention_captioner_teacher")


def build_encoder_model(sequence_model: keras.Model) -> keras.Model:
    """``grid`` -> annotations (batch, L, D), their projection (batch, L, A), initial h and c (batch, units)."""
    parts = shared_layers(sequence_model)
    grid = keras.Input(sequence_model.inputs[0].shape[1:], name="grid")
    annotations = _annotations(grid)
    projected, h, c = parts[DECODER].start(annotations)
    return keras.Model(grid, [annotations, projected, h, c], name="attention_image_encoder")


def build_step_model(sequence_model: keras.Model) -> keras.Model:
    """One decoding step: token (batch,), h, c, annotations, projection -> log-probabilities of the next word
    (batch, vocab), new h and c, and the attention weights used (batch, L). Dropout is off."""
    parts = shared_layers(sequence_model)
    decoder: SoftAttentionDecoder = parts[DECODER]
    places, dim = sequence_model.inputs[0].shape[1] * sequence_model.inputs[0].shape[2], sequence_model.inputs[0].shape[3]
    token = keras.Input((), dtype="int32", name="token")
    h = keras.Input((decoder.units,), name="h")
    c = keras.Input((decoder.units,), name="c")
    annotations = keras.Input((places, dim), name="annotations")
    projected = keras.Input((places, decoder.attention_units), name="projected")
    word = ops.take(parts[WORD_EMBEDDING].embeddings, token, axis=0)  # (batch, E)
    new_h, new_c, context, alpha = decoder.step(word, h, c, annotations, projected)
    probabilities = parts[WORD_PROBABILITIES](_deep_output(parts, new_h, context, word))  # (batch, vocab)
    log_probs = ops.log(ops.maximum(probabilities, 1e-30))  # (batch, vocab)
    return keras.Model([token, h, c, annotations, projected], [log_probs, new_h, new_c, alpha],
                       name="attention_step_decoder")
