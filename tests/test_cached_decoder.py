"""The cached decoder steps (ViT-GPT2 and BLIP, tiny, built from configs) searched by the one beam search
give the same captions as transformers' ``generate``: the same tokens and the same total log-probabilities,
for greedy and beam search, one image and three at a time. Each image's cross-attention keys and values
are computed once and never copied per beam. Precision: float32 unless asked or detected otherwise."""

from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_vit_gpt2 import single_thread, tiny_parts  # noqa: E402

from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.transformers.cached_decoder import TORCH_STATE, cached_decoder_for, decode_pixels  # noqa: E402
from captioner.models.decoding import StateOps, decode  # noqa: E402
from captioner.models.transformers.precision import PRECISION_ENV, cpu_has_native_bfloat16, resolve_precision  # noqa: E402
from captioner.models.transformers.vit_gpt2 import ModelParts, VitGpt2Captioner, generation_arguments, sequence_log_probs  # noqa: E402
from captioner.models.transformers.word_limit import WordLimit  # noqa: E402

DECODINGS = {  # max_length in words: the word limit turns it into a token budget and a rule
    "greedy": Decoding(max_length=8),
    "beam": Decoding.beam(4, max_length=8),
    "beam-no-repeat": Decoding.beam(3, max_length=6, no_repeat_ngram_size=2, length_penalty=0.5),
}
BLIP_TOKENS = 15  # BLIP's captions here: at most 15 tokens, the end token included


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def images():
    rng = random.Random(4)
    return [make_picture(rng)[0] for _ in range(3)]


@pytest.fixture(scope="module")
def vit_gpt2():
    """(model, pixels of the three images, the captioner's word limit per max_length): a random model with
    peaked, varied word choices."""
    model, processor, tokenizer = tiny_parts(seed=1, decoder_init=0.5)
    captioner = VitGpt2Captioner(ModelParts(model, processor, tokenizer), BundleInfo(kind="vit-gpt2", name="tiny"),
                                 precision="float32")
    rng = random.Random(4)
    pixels = processor(images=[make_picture(rng)[0] for _ in range(3)], return_tensors="pt")["pixel_values"]
    return captioner.model, pixels, captioner.word_limit


@pytest.fixture(scope="module")
def blip():
    """(model, pixels): a tiny BlipForConditionalGeneration with random, peaked weights."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipTextConfig, BlipVisionConfig

    text = BlipTextConfig(vocab_size=40, hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=32,
                          initializer_range=0.5, bos_token_id=30, sep_token_id=2, pad_token_id=0)
    vision = BlipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8)
    torch.manual_seed(3)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text.to_dict(), vision_config=vision.to_dict()))
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))  # (3, 3, 32, 32)
    return model.eval(), pixels


def blip_limit(end_id: int) -> WordLimit:
    """A limit of BLIP_TOKENS tokens and no word count (the tiny BLIP has no tokenizer)."""
    nothing = torch.zeros(40, dtype=torch.bool)  # (vocab,)
    return WordLimit(nothing, nothing, end_id, max_words=100, prompt_length=1, budget=BLIP_TOKENS)


def generated(model, pixels, decoding: Decoding, end_id: int, limit) -> list[list[tuple[list[int], float]]]:
    """Per image, generate()'s returned sequences: (tokens before the end token, total log-probability)."""
    arguments = generation_arguments(decoding, limit)
    with torch.inference_mode():
        output = model.generate(pixel_values=pixels, **arguments)
    scores = sequence_log_probs(output, end_id).tolist()
    per_image = arguments["num_return_sequences"]
    results = []
    for image in range(len(pixels)):
        rows = []
        for row in range(image * per_image, (image + 1) * per_image):
            tokens = output.sequences[row, 1:].tolist()
            rows.append((tokens[:tokens.index(end_id)] if end_id in tokens else tokens, scores[row]))
        results.append(rows)
    return results


def ours(model, pixels, decoding: Decoding, start_id: int, end_id: int, limit) -> list[list[tuple[list[int], float]]]:
    decoder = cached_decoder_for(model, start_id, end_id)
    assert decoder is not None
    return [[(list(h.tokens), h.log_prob) for h in hypotheses]
            for hypotheses in decode_pixels(decoder, pixels, decoding, limit)]


def assert_same_captions(expected, actual):
    for theirs, mine in zip(expected, actual, strict=True):
        assert [tokens for tokens, _ in mine[:len(theirs)]] == [tokens for tokens, _ in theirs]
        assert [score for _, score in mine[:len(theirs)]] == pytest.approx([score for _, score in theirs], abs=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(DECODINGS))
def test_vit_gpt2_captions_equal_generate(vit_gpt2, name, batch):
    model, pixels, word_limit = vit_gpt2
    end = model.generation_config.eos_token_id
    decoding = DECODINGS[name]
    limit = word_limit(decoding.max_length)
    expected = generated(model, pixels[:batch], decoding, end, limit)
    assert_same_captions(expected, ours(model, pixels[:batch], decoding, end, end, limit))
    lengths = [len(tokens) for image in expected for tokens, _ in image]  # one token per word here
    assert max(lengths) == decoding.max_length  # the word limit was reached, and held


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_blip_captions_equal_generate(blip, name, batch):
    model, pixels = blip
    text = model.config.text_config
    decoding = DECODINGS[name]
    limit = blip_limit(text.sep_token_id)
    expected = generated(model, pixels[:batch], decoding, text.sep_token_id, limit)
    assert_same_captions(expected, ours(model, pixels[:batch], decoding, text.bos_token_id, text.sep_token_id, limit))
    assert any(len(tokens) > 3 for image in expected for tokens, _ in image)


def test_each_images_cross_attention_is_computed_once_and_never_copied_per_beam(vit_gpt2):
    """Every step sees the same per-image context tensors (one row per image); only the cache grows with beams."""
    model, pixels, _ = vit_gpt2
    end = model.generation_config.eos_token_id
    decoder = cached_decoder_for(model, end, end)
    seen = []

    def watched_step(tokens, state):
        seen.append(([key.data_ptr() for key, _ in state.context], state.context[0][0].shape[0], state.rows))
        return decoder.step(tokens, state)

    with torch.inference_mode():
        decode(watched_step, decoder.encode(pixels), Decoding.beam(4, max_length=10), end, end, (), TORCH_STATE)
    assert len(seen) > 3
    assert all(pointers == seen[0][0] for pointers, _, _ in seen)  # never recomputed nor copied
    assert all(images == 3 and rows == 12 for _, images, rows in seen)  # 3 images, 4 beams each


def test_numpy_and_model_supplied_state_ops_search_alike():
    """The same Markov problem searched with numpy state and with torch tensors through StateOps."""
    rng = np.random.default_rng(0)
    table, bias = rng.normal(size=(9, 9)) * 2, rng.normal(size=(3, 9)) * 2

    def step_numpy(tokens, state):
        logits = table[tokens] + state[0]
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), state

    def step_torch(tokens, state):
        log_probs, _ = step_numpy(tokens, (state.numpy(),))
        return log_probs, state

    torch_ops = StateOps(rows=len, repeat=lambda s, k: s.repeat_interleave(k, dim=0),
                         select=lambda s, rows: s.index_select(0, torch.from_numpy(rows)))
    for decoding in (Decoding(max_length=6), Decoding.beam(3, max_length=6, no_repeat_ngram_size=2)):
        plain = decode(step_numpy, (bias,), decoding, 2, 3, (0, 1, 2))
        supplied = decode(step_torch, torch.from_numpy(bias), decoding, 2, 3, (0, 1, 2), torch_ops)
        assert [[h.tokens for h in hs] for hs in plain] == [[h.tokens for h in hs] for hs in supplied]


def test_precision_is_float32_unless_asked_or_detected(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert resolve_precision("float32", "cpu") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision(None, "cpu") == ("bfloat16" if cpu_has_native_bfloat16() else "float32")
    monkeypatch.setenv(PRECISION_ENV, "float32")
    assert resolve_precision(None, "cpu") == "float32"
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ValueError, match="float32"):
        resolve_precision(None, "cpu")


def test_a_bfloat16_captioner_runs_in_bfloat16_and_writes_captions(images):
    model, processor, tokenizer = tiny_parts(seed=1, decoder_init=0.5)
    captioner = VitGpt2Captioner(ModelParts(model, processor, tokenizer), BundleInfo(kind="vit-gpt2", name="bf16"),
                                 precision="bfloat16")
    assert captioner.precision == "bfloat16" and captioner.model.dtype == torch.bfloat16
    captions = captioner.caption(images, Decoding.beam(4))
    assert len(captions) == 3 and all(c.text and np.isfinite(c.score) for c in captions)
