"""The attention graph (Show, Attend and Tell): views sharing one set of weights, attention maps that sum to
one and match the words chosen, the penalty as the paper writes it, and the bundle. Run on both backends."""

import numpy as np
import pytest

from captioner.config import AttentionSettings
from captioner.models.base import Decoding

pytestmark = pytest.mark.backend

keras = pytest.importorskip("keras")

from captioner.models.keras import attention_network as network  # noqa: E402

SETTINGS = AttentionSettings(vocab_size=30, max_length=9, grid_cells=9, annotation_dim=6, embedding_dim=8,
                             lstm_units=10, attention_units=7, dropout=0.3, penalty=1.0)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return network.build_sequence_model(SETTINGS, seed=3)


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    grids = rng.normal(size=(3, 3, 3, SETTINGS.annotation_dim)).astype("float32")  # (images, rows, cols, D)
    tokens = np.array([[2, 7, 8, 9, 10], [2, 11, 0, 0, 0], [2, 12, 13, 0, 0]], dtype="int32")  # startseq ...
    return grids, tokens


def test_every_step_attends_with_weights_that_sum_to_one(model):
    grids, tokens = random_inputs()
    probabilities, alphas = model.predict_on_batch([grids, tokens])
    assert probabilities.shape == (3, 5, SETTINGS.vocab_size) and alphas.shape == (3, 5, 9)
    np.testing.assert_allclose(alphas.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert (alphas >= 0).all() and not np.allclose(alphas[0, 0], alphas[1, 0])  # each image its own map
    # a padded step changes nothing before it: row 1 alone gives the same first two steps
    alone, alone_alphas = model.predict_on_batch([grids[1:2], tokens[1:2, :2]])
    np.testing.assert_allclose(alone[0], probabilities[1, :2], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(alone_alphas[0], alphas[1, :2], rtol=1e-4, atol=1e-6)


def test_one_step_at_a_time_repeats_the_whole_sequence(model):
    grids, tokens = random_inputs(1)
    probabilities, alphas = model.predict_on_batch([grids, tokens])
    annotations, projected, h, c = network.build_encoder_model(model).predict_on_batch(grids)
    step = network.build_step_model(model)
    for t in range(tokens.shape[1]):
        log_probs, h, c, alpha = step.predict_on_batch([tokens[:, t], h, c, annotations, projected])
        np.testing.assert_allclose(np.exp(log_probs), probabilities[:, t], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(alpha, alphas[:, t], rtol=1e-4, atol=1e-6)


def test_the_gate_scales_the_context_and_h_c_start_from_the_mean_annotation(model):
    decoder = model.get_layer(network.DECODER)

    def numpy(x):  # layers called directly track gradients on PyTorch: detach first
        return keras.ops.convert_to_numpy(keras.ops.stop_gradient(x))

    grids, _ = random_inputs(2)
    annotations = grids.reshape(3, 9, -1)
    _, h, c = (numpy(x) for x in decoder.start(keras.ops.convert_to_tensor(annotations)))
    mean = annotations.mean(axis=1)
    np.testing.assert_allclose(h, numpy(decoder.init_h(mean)), rtol=1e-5)
    np.testing.assert_allclose(c, numpy(decoder.init_c(mean)), rtol=1e-5)
    projected = keras.ops.convert_to_tensor(np.zeros((3, 9, SETTINGS.attention_units), "float32"))
    alpha, context = (numpy(x) for x in decoder.attend(keras.ops.convert_to_tensor(annotations), projected,
                                                        keras.ops.convert_to_tensor(h)))
    beta = numpy(decoder.gate(h))  # (3, 1) in (0, 1)
    np.testing.assert_allclose(context, beta * np.einsum("bl,bld->bd", alpha, annotations), rtol=1e-4, atol=1e-6)
    assert ((beta > 0) & (beta < 1)).all()


def test_the_doubly_stochastic_penalty_is_lambda_sum_of_squared_uncovered_attention(model):
    from captioner.training.lstm_fit import word_loss

    grids, tokens = random_inputs(3)
    targets = np.concatenate([tokens[:, 1:], np.zeros((3, 1), "int32")], axis=1)
    targets[np.arange(3), (tokens != 0).sum(axis=1) - 1] = 3  # endseq after the last word
    _, alphas = model.predict_on_batch([grids, tokens])
    words = (tokens != 0)[..., None]  # (3, 5, 1)
    expected = ((1.0 - (alphas * words).sum(axis=1)) ** 2).sum(axis=-1).mean()  # mean over captions of sum_i
    losses = {}
    for weight in (0.0, 2.0):
        teacher = network.build_teacher_model(model, weight)
        teacher.compile(loss=word_loss, jit_compile=False)
        losses[weight] = teacher.evaluate([grids, tokens], targets, verbose=0)
    assert losses[2.0] - losses[0.0] == pytest.approx(2.0 * expected, rel=1e-4)


def test_bundle_round_trip_and_captions_carry_the_maps_of_their_words(shapes_dataset, tmp_path_factory):
    from captioner.config import TrainingSettings
    from captioner.data.images import load_image
    from captioner.data.prepare import prepare_dataset
    from captioner.data.prepared import PreparedData
    from captioner.features import BackboneSpec
    from captioner.models.registry import load_captioner
    from captioner.training.attention import train_attention

    folder = tmp_path_factory.mktemp("attention-model")
    prepare_dataset(shapes_dataset, folder / "prepared")
    bundle = train_attention(folder / "prepared", folder / "one-epoch", TrainingSettings(epochs=1, batch_size=16),
                             {"embedding_dim": 8, "lstm_units": 8, "attention_units": 8},
                             BackboneSpec("thumbnail", image_size=24, grid=True), feature_cache=folder / "cache",
                             progress=False)
    captioner = load_captioner(bundle)
    assert captioner.kind == "attention" and captioner.grid_shape == (6, 6, 48)
    prepared = PreparedData(folder / "prepared")
    images = [load_image(prepared.image_path(item.image)) for item in prepared.split("test")[:3]]
    for decoding in (Decoding(max_length=6), Decoding.beam(3, max_length=6)):
        captions = captioner.caption(images, decoding)
        for caption in captions:
            maps = caption.attention
            assert maps.grid == (6, 6) and list(maps.words) == caption.text.split()
            weights = np.asarray(maps.weights)
            assert weights.shape == (len(maps.words), 36)
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    # the maps are exactly the attention each chosen word was picked with, step by step (greedy)
    grids = captioner.backbone.embed(images)
    first = captioner.caption_features(grids[:1], Decoding(max_length=6))[0]
    h, c, annotations, projected = captioner.encode(grids[:1])
    token = np.array([prepared.vocabulary.start_id], "int32")
    for word, expected in zip(first.attention.words, first.attention.weights):
        log_probs, h, c, alpha = captioner.step_model.predict_on_batch([token, h, c, annotations, projected])
        np.testing.assert_allclose(alpha[0], expected, rtol=1e-4, atol=1e-6)
        token = np.array([prepared.vocabulary.tokens.index(word)], "int32")
        assert int(np.argmax(log_probs[0])) == token[0]
