"""The VLMs' cached step (models/transformers/vlm_decoder.py) on tiny SmolVLM (Idefics3 with Llama), LLaVA as
JoyCaption is published (Llama) and LLaVA-OneVision (Qwen2): in float32 its captions, scores and alternatives
equal ``generate``'s, in PyTorch and with the step exported to ONNX Runtime (the prompt's forward stays in
PyTorch); Qwen3-VL, whose rotary positions run over three axes, keeps ``generate``, as do padded batches and the
repetition rules, which ``generate`` applies to the prompt's tokens too."""

from __future__ import annotations

import json
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from support.tiny_image_to_text import save_tiny  # noqa: E402
from support.tiny_vit_gpt2 import single_thread  # noqa: E402

from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.registry import load_captioner  # noqa: E402
from captioner.models.transformers import onnx_export, vlm  # noqa: E402
from captioner.models.transformers.onnx_step import OnnxImageDecoder  # noqa: E402
from captioner.models.transformers.vlm_decoder import VlmPromptDecoder, reads_batch  # noqa: E402

FITTING = ("idefics3", "llava", "llava_onevision")  # Llama, Llama, Qwen2 language models
DECODINGS = {"greedy": Decoding(method="greedy", max_length=12, alternatives=0),
             "beam": Decoding.beam(3, max_length=12, alternatives=1)}


@pytest.fixture(scope="module", autouse=True)
def float32_one_thread_own_cache(tmp_path_factory):
    with single_thread(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_CACHE_DIR", str(tmp_path_factory.mktemp("vlm-onnx-cache")))
        patch.setenv("CAPTIONER_PRECISION", "float32")
        yield patch


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("vlm-step")
    return {kind: save_tiny(kind, root / kind) for kind in (*FITTING, "qwen3_vl")}


@pytest.fixture(scope="module")
def images():
    rng = random.Random(5)
    return [make_picture(rng)[0] for _ in range(3)]


def loaded(folder, runtime: str, patch):
    patch.setenv("CAPTIONER_RUNTIME", runtime)
    return load_captioner(folder)


def assert_search_equals_generate(captioner, images, decoding, instruction):
    parts, decoder = captioner.parts, captioner.cached_decoder
    inputs = vlm.model_inputs(parts.processor, images, instruction, torch.float32, "cpu")
    assert reads_batch(inputs)
    searched = vlm.cached_captions(parts, decoder, inputs, decoding, 1 + decoding.alternatives, "cpu")
    generated = vlm.caption_batch(parts, images, decoding, instruction, "cpu", None)
    assert [c.text for c in searched] == [c.text for c in generated]
    assert [c.score for c in searched] == pytest.approx([c.score for c in generated], abs=1e-4)
    assert [[a.text for a in c.alternatives] for c in searched] == [[a.text for a in c.alternatives]
                                                                   for c in generated]


@pytest.mark.parametrize("kind", FITTING)
def test_the_cached_step_gives_generates_captions(folders, images, kind, float32_one_thread_own_cache):
    captioner = loaded(folders[kind], "torch", float32_one_thread_own_cache)
    assert isinstance(captioner.cached_decoder, VlmPromptDecoder) and captioner.runtime == "torch"
    instruction = vlm.instruction_for(captioner.parts.architecture, "caption", "")
    for decoding in DECODINGS.values():
        assert_search_equals_generate(captioner, images, decoding, instruction)
    # in PyTorch, beam search goes through the step (its beams share the prompt's cache); greedy search and
    # sampling, which copy no cache, stay with generate, which ran them faster
    assert vlm.searched(captioner.cached_decoder, DECODINGS["beam"])
    assert not vlm.searched(captioner.cached_decoder, DECODINGS["greedy"])


@pytest.mark.parametrize("kind", FITTING)
def test_the_step_runs_in_onnx_runtime_and_gives_generates_captions(folders, images, kind,
                                                                    float32_one_thread_own_cache):
    captioner = loaded(folders[kind], "onnx", float32_one_thread_own_cache)
    decoder = captioner.cached_decoder
    assert captioner.runtime == "onnx" and isinstance(decoder, OnnxImageDecoder)
    graphs = decoder.graphs
    assert graphs.step.is_file() and not graphs.encoder.exists() and not graphs.has_encoder
    assert json.loads((graphs.folder / onnx_export.MANIFEST).read_text())["encoder"] is False
    instruction = vlm.instruction_for(captioner.parts.architecture, "caption", "")
    for decoding in DECODINGS.values():
        assert vlm.searched(decoder, decoding)  # in ONNX Runtime, every search
        assert_search_equals_generate(captioner, images, decoding, instruction)
    sampled = Decoding(method="sample", seed=3, max_length=10, temperature=1.1, alternatives=1)
    first, again = (captioner.caption(images[:2], sampled) for _ in range(2))
    assert [c.text for c in first] == [c.text for c in again]  # seeded sampling repeats through the search
    # another instruction is a prompt of another length: the graph's positions follow it
    assert_search_equals_generate(captioner, images, DECODINGS["greedy"], "Say what is in this picture.")
    assert loaded(folders[kind], "onnx", float32_one_thread_own_cache).cached_decoder.graphs == graphs  # cached


def test_what_keeps_generate(folders, images, float32_one_thread_own_cache, caplog):
    qwen = loaded(folders["qwen3_vl"], "torch", float32_one_thread_own_cache)
    assert qwen.cached_decoder is None  # three-axis rotary positions: generate
    with caplog.at_level("WARNING", logger="captioner.models.transformers.onnx_step"):
        assert loaded(folders["qwen3_vl"], "onnx", float32_one_thread_own_cache).runtime == "torch"
    assert any("Llama and Qwen2" in record.getMessage() for record in caplog.records)
    assert not vlm.searchable(Decoding(method="beam", beam_size=3, no_repeat_ngram_size=2))
    assert not vlm.searchable(Decoding(method="beam", beam_size=3, repetition_penalty=1.2))
    captioner = loaded(folders["idefics3"], "torch", float32_one_thread_own_cache)
    inputs = vlm.model_inputs(captioner.parts.processor, images[:2], "Describe it.", torch.float32, "cpu")
    assert reads_batch(inputs)
    inputs["attention_mask"][0, 0] = 0  # a padded row: its beams could not share the prompt's positions
    assert not reads_batch(inputs)
