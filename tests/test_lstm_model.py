"""The CNN+LSTM graph: the original architecture, its views sharing one set of weights, and the bundle."""

import numpy as np
import pytest

from captioner.config import LstmSettings
from captioner.data.text import Vocabulary
from captioner.models.base import Decoding
from captioner.models.bundle import BundleInfo

pytestmark = pytest.mark.backend

keras = pytest.importorskip("keras")

from captioner.models.keras import lstm_network as network  # noqa: E402
from captioner.models.keras.lstm import LstmCaptioner, load, load_sequence_model, write_bundle  # noqa: E402

SETTINGS = LstmSettings(vocab_size=40, max_length=9, feature_dim=1920)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return network.build_sequence_model(SETTINGS, seed=3)


def random_inputs(seed=0, rows=4):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, SETTINGS.feature_dim)).astype("float32")
    steps = network.sequence_length(SETTINGS)
    tokens = np.zeros((rows, steps), dtype="int32")
    lengths = [steps, 1, 3, 5][:rows]
    for row, length in enumerate(lengths):
        tokens[row, 0] = 2  # startseq
        tokens[row, 1:length] = rng.integers(4, SETTINGS.vocab_size, size=length - 1)
    return features, tokens, lengths


def producer(tensor):
    return tensor._keras_history.operation


def test_layers_and_sizes_are_the_original_architecture(model):
    get = model.get_layer
    assert isinstance(get("image_dense"), keras.layers.Dense) and get("image_dense").units == 256
    assert get("image_dense").activation.__name__ == "relu"
    embedding = get("word_embedding")
    assert isinstance(embedding, keras.layers.Embedding)
    assert (embedding.input_dim, embedding.output_dim) == (SETTINGS.vocab_size, 256)
    assert isinstance(get("lstm"), keras.layers.LSTM) and get("lstm").units == 256
    assert get("lstm_dropout").rate == 0.5 and get("dense_dropout").rate == 0.5
    assert get("dense").units == 128 and get("dense").activation.__name__ == "relu"
    head = get("word_probabilities")
    assert head.units == SETTINGS.vocab_size and head.activation.__name__ == "softmax"
    # the image vector is the LSTM's first step, ahead of the word embeddings
    concat = get("image_then_words")
    first, second = (producer(t) for t in concat._inbound_nodes[0].input_tensors)
    assert first.name == "image_step" and producer(first._inbound_nodes[0].input_tensors[0]).name == "image_dense"
    assert second.name == "word_embedding"
    # the "model modification": the LSTM output (after dropout) plus the image vector
    add = get("add_image")
    assert isinstance(add, keras.layers.Add)
    sources = {producer(t).name for t in add._inbound_nodes[0].input_tensors}
    assert sources == {"lstm_dropout", "image_step"}
    assert producer(get("dense")._inbound_nodes[0].input_tensors[0]).name == "add_image"


def test_output_shapes(model):
    features, tokens, _ = random_inputs()
    probabilities = np.asarray(model.predict_on_batch([features, tokens]))
    assert probabilities.shape == (4, SETTINGS.max_length - 1, SETTINGS.vocab_size)  # (batch, steps, vocab)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    prefix = network.build_prefix_model(model)
    assert np.asarray(prefix.predict_on_batch([features, tokens])).shape == (4, SETTINGS.vocab_size)
    image_vector, h, c = network.build_encoder_model(model).predict_on_batch(features)
    assert np.asarray(image_vector).shape == np.asarray(h).shape == np.asarray(c).shape == (4, 256)


def test_prefix_view_predicts_the_word_after_the_prefix_with_the_same_weights(model):
    features, tokens, lengths = random_inputs(1)
    full = np.asarray(model.predict_on_batch([features, tokens]))  # (batch, steps, vocab)
    prefix_model = network.build_prefix_model(model)
    assert {id(w) for w in prefix_model.weights} == {id(w) for w in model.weights}
    next_word = np.asarray(prefix_model.predict_on_batch([features, tokens]))  # (batch, vocab)
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(next_word[row], full[row, length - 1], atol=1e-6)


def test_step_decoder_gives_the_full_models_outputs(model):
    features, tokens, lengths = random_inputs(2)
    full = np.asarray(model.predict_on_batch([features, tokens]))  # (batch, steps, vocab)
    encoder, step = network.build_encoder_model(model), network.build_step_model(model)
    image_vector, h, c = (np.asarray(a) for a in encoder.predict_on_batch(features))
    for position in range(tokens.shape[1]):
        log_probs, h, c = (np.asarray(a) for a in step.predict_on_batch([tokens[:, position], h, c, image_vector]))
        for row, length in enumerate(lengths):
            if position < length:  # beyond a caption's end the sequence model sees padding
                np.testing.assert_allclose(np.exp(log_probs[row]), full[row, position], atol=1e-6)


def test_padding_does_not_change_predictions(model):
    features, tokens, _ = random_inputs(3)
    short = tokens.copy()
    short[0, 4:] = 0  # the same caption start, padded after four tokens
    a = np.asarray(model.predict_on_batch([features, tokens]))
    b = np.asarray(model.predict_on_batch([features, short]))
    np.testing.assert_allclose(a[0, :4], b[0, :4], atol=1e-6)


def test_settings_the_architecture_cannot_take_are_refused():
    with pytest.raises(ValueError, match="image_units"):
        network.build_sequence_model(LstmSettings(vocab_size=40, max_length=9, lstm_units=128))
    with pytest.raises(ValueError, match="vocab_size"):
        network.build_sequence_model(LstmSettings(vocab_size=0, max_length=9))


def make_vocabulary(size=SETTINGS.vocab_size):
    words = [f"w{i}" for i in range(size - 4)]
    return Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *words], max_length=SETTINGS.max_length)


def test_saved_bundle_reloads_to_identical_predictions(model, tmp_path):
    features, tokens, _ = random_inputs(4)
    info = BundleInfo(kind="lstm", name="tiny", settings={"lstm": vars(SETTINGS)})
    write_bundle(tmp_path / "tiny", info, model, make_vocabulary())
    assert {p.name for p in (tmp_path / "tiny").iterdir()} >= {"captioner.json", "model.keras", "vocab.json"}
    reloaded = load_sequence_model(tmp_path / "tiny" / "model.keras")
    np.testing.assert_array_equal(np.asarray(reloaded.predict_on_batch([features, tokens])),
                                  np.asarray(model.predict_on_batch([features, tokens])))
    captioner = load(tmp_path / "tiny", info, with_backbone=False)
    original = LstmCaptioner("tiny", info, model, make_vocabulary())
    for decoding in (Decoding(max_length=6), Decoding.beam(3, max_length=6)):
        assert captioner.caption_features(features, decoding) == original.caption_features(features, decoding)


def test_captions_never_hold_markers_and_respect_max_length(model):
    features, _, _ = random_inputs(5)
    captioner = LstmCaptioner("tiny", BundleInfo(kind="lstm", name="tiny"), model, make_vocabulary())
    assert captioner.default_decoding.method == "greedy"
    assert captioner.default_decoding.max_length == SETTINGS.max_length - 2
    for decoding in (Decoding(max_length=4), Decoding.beam(3, max_length=4, alternatives=2)):
        for caption in captioner.caption_features(features, decoding):
            words = caption.text.split()
            assert len(words) <= 4
            assert not {"<pad>", "<unk>", "startseq", "endseq"} & set(words)
            assert np.isfinite(caption.score) and caption.score < 0
            if decoding.method == "beam":
                assert len(caption.alternatives) == 2 and caption.text not in {a.text for a in caption.alternatives}
    with pytest.raises(ValueError, match="shape"):
        captioner.caption_features(np.zeros((2, 7), "float32"))


def test_a_bundle_that_does_not_match_its_vocabulary_is_refused(model, tmp_path):
    from captioner.errors import ModelError

    info = BundleInfo(kind="lstm", name="odd")
    write_bundle(tmp_path / "odd", info, model, make_vocabulary(SETTINGS.vocab_size + 1))
    with pytest.raises(ModelError, match="vocab.json"):
        load(tmp_path / "odd", info, with_backbone=False)
    (tmp_path / "odd" / "model.keras").unlink()
    with pytest.raises(ModelError, match="model.keras is missing"):
        load(tmp_path / "odd", info, with_backbone=False)
