"""Every model kind keeps the one decoding contract of captioner.models.base: max_length counts words,
alternatives=N gives min(N, beam - 1) other captions (N further samples when sampling), and score is the
caption's total log-probability, checked here by teacher-forcing the returned caption through the model in
one plain forward pass; a seeded sample does not depend on the other images of its batch."""

from __future__ import annotations

import random

import numpy as np
import pytest

from captioner.data.shapes import describe, make_picture
from captioner.models.base import Decoding
from captioner.models.bundle import BundleInfo

pytestmark = pytest.mark.backend

DECODINGS = [Decoding(max_length=4), Decoding.beam(3, max_length=4, alternatives=2),
             Decoding.beam(4, max_length=6, alternatives=5), Decoding.beam(2, max_length=3, alternatives=0),
             Decoding(method="sample", seed=2, temperature=1.5, top_p=0.9, max_length=4, alternatives=2)]


@pytest.fixture(scope="module")
def images():
    rng = random.Random(4)
    return [make_picture(rng)[0] for _ in range(3)]


def lstm_kind():
    """A random CNN+LSTM with the thumbnail backbone; its teacher-forced log-probability of a caption."""
    keras = pytest.importorskip("keras")
    from captioner.config import LstmSettings
    from captioner.data.text import Vocabulary
    from captioner.features import BackboneSpec, build_backbone
    from captioner.models.keras import lstm_network
    from captioner.models.keras.lstm import LstmCaptioner

    backbone = build_backbone(BackboneSpec("thumbnail"))
    settings = LstmSettings(vocab_size=30, max_length=10, feature_dim=backbone.dim)
    keras.utils.set_random_seed(5)
    model = lstm_network.build_sequence_model(settings, seed=5)
    # Random weights differ between Keras backends; a low end-marker bias makes both talk on to the limit.
    output = model.get_layer(lstm_network.WORD_PROBABILITIES)
    kernel, bias = output.get_weights()
    bias[3] = -4.0  # endseq
    output.set_weights([kernel, bias])
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *(f"w{i}" for i in range(26))], max_length=10)
    captioner = LstmCaptioner("tiny-lstm", BundleInfo(kind="lstm", name="tiny-lstm"), model, vocabulary, backbone)

    def log_prob(image, text: str) -> float:
        ids = [vocabulary.start_id, *(vocabulary.tokens.index(w) for w in text.split()), vocabulary.end_id]
        tokens = np.zeros((1, lstm_network.sequence_length(settings)), dtype=np.int32)  # (1, steps)
        tokens[0, : len(ids) - 1] = ids[:-1]
        probabilities = np.asarray(model.predict_on_batch([backbone.embed([image]), tokens]))[0]  # (steps, vocab)
        return float(sum(np.log(probabilities[position, word]) for position, word in enumerate(ids[1:])))

    return captioner, log_prob


def vit_gpt2_kind():
    """A random tiny ViT-GPT2 (one token per word); its teacher-forced log-probability of a caption."""
    torch = pytest.importorskip("torch")
    from support.tiny_vit_gpt2 import tiny_parts

    from captioner.models.transformers.vit_gpt2 import ModelParts, VitGpt2Captioner

    parts = ModelParts(*tiny_parts(seed=1, decoder_init=0.5))
    captioner = VitGpt2Captioner(parts, BundleInfo(kind="vit-gpt2", name="tiny-vit-gpt2"), device="cpu")

    def log_prob(image, text: str) -> float:
        ids = parts.tokenizer(text, add_special_tokens=False)["input_ids"] + [parts.tokenizer.eos_token_id]
        start = parts.model.config.decoder_start_token_id
        pixels = parts.image_processor(images=[image], return_tensors="pt")["pixel_values"]  # (1, 3, 32, 32)
        with torch.no_grad():
            logits = parts.model(pixel_values=pixels, decoder_input_ids=torch.tensor([[start, *ids[:-1]]])).logits
        log_probs = torch.log_softmax(logits[0].double(), dim=-1)  # (steps, vocab)
        return float(log_probs[torch.arange(len(ids)), torch.tensor(ids)].sum())

    return captioner, log_prob


def attention_kind():
    """A random attention captioner on the thumbnail grid; its teacher-forced log-probability of a caption."""
    keras = pytest.importorskip("keras")
    from captioner.config import AttentionSettings
    from captioner.data.text import Vocabulary
    from captioner.features import BackboneSpec, build_backbone
    from captioner.models.keras import attention_network
    from captioner.models.keras.attention import AttentionCaptioner

    backbone = build_backbone(BackboneSpec("thumbnail", image_size=24, grid=True))
    settings = AttentionSettings(vocab_size=30, max_length=10, grid_cells=36, annotation_dim=backbone.dim,
                                 embedding_dim=16, lstm_units=16, attention_units=16)
    keras.utils.set_random_seed(5)
    model = attention_network.build_sequence_model(settings, seed=5)
    output = model.get_layer(attention_network.WORD_PROBABILITIES)  # talks on to the limit, as the LSTM above
    kernel, bias = output.get_weights()
    bias[3] = -4.0  # endseq
    output.set_weights([kernel, bias])
    vocabulary = Vocabulary(["<pad>", "<unk>", "startseq", "endseq", *(f"w{i}" for i in range(26))], max_length=10)
    captioner = AttentionCaptioner("tiny-attention", BundleInfo(kind="attention", name="tiny-attention"), model,
                                   vocabulary, backbone)

    def log_prob(image, text: str) -> float:
        ids = [vocabulary.start_id, *(vocabulary.tokens.index(w) for w in text.split()), vocabulary.end_id]
        tokens = np.asarray([ids[:-1]], dtype=np.int32)  # (1, steps)
        probabilities = np.asarray(model.predict_on_batch([backbone.embed([image]), tokens])[0])[0]  # (steps, vocab)
        return float(sum(np.log(probabilities[position, word]) for position, word in enumerate(ids[1:])))

    return captioner, log_prob


KINDS = {"lstm": lstm_kind, "vit-gpt2": vit_gpt2_kind, "attention": attention_kind}


@pytest.fixture(scope="module", params=sorted(KINDS))
def kind(request):
    return KINDS[request.param]()


@pytest.mark.parametrize("decoding", DECODINGS, ids=lambda d: f"{d.method}{d.beam_size}-len{d.max_length}"
                                                              f"-alt{d.alternatives}")
def test_every_kind_keeps_the_decoding_contract(kind, images, decoding):
    captioner, teacher_forced_log_prob = kind
    captions = captioner.caption(images, decoding)
    assert len(captions) == len(images)
    longest = 0
    for image, caption in zip(images, captions):
        expected = {"beam": min(decoding.alternatives, decoding.beam_size - 1),
                    "sample": decoding.alternatives}.get(decoding.method, 0)
        assert len(caption.alternatives) == expected
        assert len({caption.text, *(a.text for a in caption.alternatives)}) == expected + 1  # all different
        for text, score in [(caption.text, caption.score), *((a.text, a.log_prob) for a in caption.alternatives)]:
            words = len(text.split())
            assert 1 <= words <= decoding.max_length
            longest = max(longest, words)
            assert score == pytest.approx(teacher_forced_log_prob(image, text), abs=2e-3)
    assert longest == decoding.max_length  # random models talk on: the limit is reached, in words


def test_a_seeded_sample_is_the_same_whatever_shares_its_batch(kind, images):
    captioner, _ = kind
    decoding = Decoding(method="sample", seed=9, max_length=5, alternatives=1)
    together = captioner.caption(images, decoding)
    alone = [captioner.caption([image], decoding)[0] for image in images]
    assert [(c.text, [a.text for a in c.alternatives]) for c in together] == \
        [(c.text, [a.text for a in c.alternatives]) for c in alone]
    assert [c.text for c in captioner.caption(images, decoding.with_changes(seed=10))] != [c.text for c in together]
    fresh = [[c.text for c in captioner.caption(images, decoding.with_changes(seed=None))] for _ in range(2)]
    assert fresh[0] != fresh[1]  # no seed: drawn afresh each time


@pytest.mark.slow
def test_a_sub_word_tokenizer_still_counts_words(images):
    """GPT-2 style byte-level BPE (a model fitted briefly on it): several tokens per word, and max_length
    still counts words."""
    pytest.importorskip("torch")
    from support.tiny_vit_gpt2 import END, fit_briefly, shapes_captions, tiny_parts
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from captioner.models.transformers.vit_gpt2 import ModelParts, VitGpt2Captioner
    from captioner.models.transformers.word_limit import word_start_table

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(shapes_captions(), trainers.BpeTrainer(
        vocab_size=290, special_tokens=[END], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=END, eos_token=END, unk_token=END,
                                        pad_token=END)
    starts = word_start_table(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    words = [i for i, t in enumerate(tokens) if t.lstrip("Ġ").isascii() and t.lstrip("Ġ").isalpha()]  # word pieces
    assert sum(starts[i] for i in words) > 10 and sum(not starts[i] for i in words) > 10
    assert [starts[i] for i in words] == [tokens[i].startswith("Ġ") for i in words]  # GPT-2's marker of a new word
    rng = random.Random(2)
    pictures = [make_picture(rng) for _ in range(8)]
    model, processor, tokenizer = tiny_parts(seed=0, tokenizer=tokenizer)
    fit_briefly(model, processor, tokenizer, [p for p, _ in pictures], [describe(g, rng)[0] for _, g in pictures],
                steps=20)
    captioner = VitGpt2Captioner(ModelParts(model, processor, tokenizer), BundleInfo(kind="vit-gpt2", name="bpe"),
                                 device="cpu")
    for decoding in (Decoding(max_length=3), Decoding.beam(3, max_length=2)):
        generated = captioner.caption(images, decoding)
        lengths = [len(c.text.split()) for c in generated]
        assert max(lengths) == decoding.max_length, [c.text for c in generated]
