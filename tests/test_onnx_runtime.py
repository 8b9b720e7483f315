"""The ONNX Runtime path of the transformers captioners (tiny ViT-GPT2, BLIP, GIT and Florence-2; the VLMs'
step: test_vlm_cached_step.py): graphs exported from the loaded model, checked against PyTorch and cached;
float32 captions, scores and alternatives equal ``generate``'s for greedy and beam search, and sampling equals
the PyTorch cached step's, all through the one search; the choice of runtime, its fallback to PyTorch, the
command line and the API; int8 graphs quantised from the float32 ones, cached beside them, and their agreement
with float32."""

from __future__ import annotations

import json
import logging
import random
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from support.cli import assert_clean_failure  # noqa: E402
from support.tiny_image_to_text import BLIP_PROMPT, save_tiny, tiny_blip, tiny_florence2, tiny_git  # noqa: E402
from support.tiny_vit_gpt2 import single_thread, tiny_parts  # noqa: E402
from test_cached_decoder_prompted import DECODINGS, assert_cached_equals_generate  # noqa: E402

from captioner import environment  # noqa: E402
from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.transformers import onnx_export, precision  # noqa: E402
from captioner.models.transformers.cached_decoder import cached_decoder_for  # noqa: E402
from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts, caption_batch  # noqa: E402
from captioner.models.transformers.onnx_step import OnnxImageDecoder, precision_for_runtime  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread_and_own_cache(tmp_path_factory):
    """One thread (results repeat), and graphs cached in a folder of this module's own."""
    with single_thread(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_CACHE_DIR", str(tmp_path_factory.mktemp("onnx-cache")))
        yield


@pytest.fixture(scope="module")
def images():
    rng = random.Random(4)
    return [make_picture(rng)[0] for _ in range(3)]


def captioner_of(model, processor, tokenizer=None, runtime="onnx", precision="float32"):
    if tokenizer is None:
        processor, tokenizer, full = processor.image_processor, processor.tokenizer, processor
    else:
        full = None
    return ImageToTextCaptioner(ModelParts(model, processor, tokenizer, full), BundleInfo(kind="image-to-text",
                                name="tiny"), precision=precision, device="cpu", runtime=runtime)


@pytest.fixture(scope="module")
def vit_gpt2():
    return captioner_of(*tiny_parts(seed=1, decoder_init=0.5))


@pytest.fixture(scope="module")
def blip():
    return captioner_of(*tiny_blip(text_init=0.3))


@pytest.fixture(scope="module")
def git():
    return captioner_of(*tiny_git(init=0.3))


def test_each_family_runs_through_onnx_runtime(vit_gpt2, blip, git, florence):
    for captioner in (vit_gpt2, blip, git, florence):
        assert captioner.runtime == "onnx" and isinstance(captioner.cached_decoder, OnnxImageDecoder)
        graphs = captioner.cached_decoder.graphs
        assert graphs.encoder.is_file() and graphs.step.is_file()
        manifest = json.loads((graphs.folder / onnx_export.MANIFEST).read_text())
        assert manifest["exporter"] == "torchscript" and manifest["onnxruntime"]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", list(DECODINGS))
def test_vit_gpt2_onnx_captions_equal_generate(vit_gpt2, images, name, batch):
    assert_cached_equals_generate(vit_gpt2, images[:batch], DECODINGS[name], "")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_blip_onnx_captions_equal_generate(blip, images, name, batch):
    """Without a prompt, and with a caption prefix (fed at the first step, in PyTorch)."""
    assert_cached_equals_generate(blip, images[:batch], DECODINGS[name], "")
    assert_cached_equals_generate(blip, images[:batch], DECODINGS[name], BLIP_PROMPT)


@pytest.fixture(scope="module")
def florence():
    return captioner_of(*tiny_florence2(init=0.3))


@pytest.mark.parametrize("name", list(DECODINGS))
def test_florence2_onnx_captions_equal_generate(florence, images, name):
    """Its task prompt is an input of the exported encoder; its generation config forces </s> at the limit."""
    for prompt in ("<CAPTION>", "<DETAILED_CAPTION>"):
        assert_cached_equals_generate(florence, images, DECODINGS[name], prompt)


@pytest.mark.parametrize("name", ["greedy", "beam", "beam-no-repeat"])
def test_git_onnx_captions_equal_generate(git, images, name):
    assert_cached_equals_generate(git, images, DECODINGS[name], "")
    if name != "beam-no-repeat":
        assert_cached_equals_generate(git, images, DECODINGS[name], BLIP_PROMPT)


def test_sampling_through_onnx_equals_sampling_through_pytorch(vit_gpt2, images):
    decoding = Decoding(method="sample", seed=7, max_length=8, temperature=1.2, top_p=0.95, alternatives=2)
    model = vit_gpt2.model
    torch_step = cached_decoder_for(model, model.generation_config.decoder_start_token_id,
                                    vit_gpt2.cached_decoder.end_id)
    ours = caption_batch(vit_gpt2.parts, images, decoding, "", vit_gpt2.device, vit_gpt2.cached_decoder)
    theirs = caption_batch(vit_gpt2.parts, images, decoding, "", vit_gpt2.device, torch_step)
    assert [c.text for c in ours] == [c.text for c in theirs] and all(c.text for c in ours)
    assert [c.score for c in ours] == pytest.approx([c.score for c in theirs], abs=1e-4)
    assert [[a.text for a in c.alternatives] for c in ours] == [[a.text for a in c.alternatives] for c in theirs]


def test_graphs_are_cached_by_model_and_reused(vit_gpt2):
    decoder = vit_gpt2.cached_decoder.torch_decoder
    graphs = vit_gpt2.cached_decoder.graphs
    written = graphs.step.stat().st_mtime_ns
    assert onnx_export.graphs_for(decoder, "vit-gpt2").folder == graphs.folder  # from the cache
    assert graphs.step.stat().st_mtime_ns == written
    other, _, _ = tiny_parts(seed=2, decoder_init=0.5)  # the same config, other weights: another key
    assert onnx_export.cache_key(other) != onnx_export.cache_key(vit_gpt2.model)
    assert not any(p.name.startswith(".") for p in graphs.folder.parent.iterdir())  # no staging left behind


def test_an_export_that_differs_from_pytorch_is_refused(tmp_path):
    model, processor, tokenizer = tiny_parts(seed=3, decoder_init=0.5)
    decoder = cached_decoder_for(model.eval(), 0, model.generation_config.eos_token_id)
    probe = {"pixel_values": onnx_export.probe_pixels(model)}
    graphs = onnx_export.export(decoder, tmp_path, probe)
    assert onnx_export.check(decoder, graphs, probe) <= onnx_export.TOLERANCE  # as exported: equal
    with torch.no_grad():
        model.decoder.transformer.ln_f.weight.mul_(1.5)  # PyTorch now computes something else than the graph
    with pytest.raises(onnx_export.ExportRefused, match="differs from PyTorch"):
        onnx_export.check(decoder, graphs, probe)


def test_an_export_refused_by_its_check_leaves_the_model_in_pytorch_with_one_line(monkeypatch, caplog):
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # no graph can pass now
    with caplog.at_level(logging.WARNING, logger="captioner.models.transformers.onnx_step"):
        captioner = captioner_of(*tiny_parts(seed=4))
    assert captioner.runtime == "torch" and not isinstance(captioner.cached_decoder, OnnxImageDecoder)
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("vit-gpt2 runs in PyTorch, not ONNX Runtime: the exported graph differs from PyTorch")


def test_without_onnxruntime_the_pytorch_path_runs(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails, as where not installed
    with caplog.at_level(logging.WARNING, logger="captioner.models.transformers.onnx_step"):
        captioner = captioner_of(*tiny_parts(seed=1))
    assert captioner.runtime == "torch"
    assert "onnxruntime is not installed" in caplog.text
    assert captioner.caption([make_picture(random.Random(1))[0]])[0].text


def test_a_vision_language_model_without_a_cached_step_asked_for_onnx_runs_in_pytorch_with_one_line(caplog):
    """A VLM whose language model the cached step does not fit (Qwen3-VL) decodes through generate: ONNX asked
    for, PyTorch runs, and one line says why; under auto, nothing is said. (The VLMs that fit:
    test_vlm_cached_step.py.)"""
    from captioner.models.transformers.onnx_step import onnx_decoder

    with caplog.at_level(logging.WARNING, logger="captioner.models.transformers.onnx_step"):
        assert onnx_decoder(None, "auto", "float32", "cpu", "qwen3-vl") == (None, "torch")
        assert not caplog.records
        assert onnx_decoder(None, "onnx", "float32", "cpu", "qwen3-vl") == (None, "torch")
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("qwen3-vl runs in PyTorch, not ONNX Runtime: its language model decodes through generate")


def test_auto_chooses_onnx_for_float32_on_the_cpu_and_pytorch_otherwise(monkeypatch):
    parts = tiny_parts(seed=1)
    assert captioner_of(*parts, runtime="auto").runtime == "onnx"
    assert captioner_of(*parts, runtime="auto", precision="bfloat16").runtime == "torch"
    assert captioner_of(*parts, runtime="torch").runtime == "torch"
    monkeypatch.setenv("CAPTIONER_PRECISION", "auto")
    assert precision_for_runtime("onnx", None) == "float32"  # ONNX computes in float32
    with pytest.raises(ValueError, match="float32"):
        precision_for_runtime("onnx", "bfloat16")

    for units, expected in (("amx", "float32"), ("avx512_bf16", None), (None, None)):  # None: auto precision
        monkeypatch.setattr(precision, "cpu_bf16_units", lambda: units)  # decides (bf16 where native, else float32)
        assert precision_for_runtime("auto", None, "vit-gpt2", "cpu") == expected  # ONNX faster than bf16 on AMX
        assert precision_for_runtime("auto", None, "git", "cpu") is None  # bf16 faster, or not measured: bf16
    monkeypatch.setenv("CAPTIONER_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="CAPTIONER_RUNTIME"):
        captioner_of(*parts, runtime=None)


def test_models_export_command_and_the_api_say_the_runtime(runner, make_app, tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "_chosen", {})  # what an option chooses lasts for its process: start clean
    models = tmp_path / "models"
    save_tiny("vit-gpt2", models / "tiny-vit-gpt2", seed=1)
    save_tiny("florence2", models / "tiny-florence")
    with monkeypatch.context() as strict:
        strict.setattr(onnx_export, "TOLERANCE", -1.0)
        assert_clean_failure(runner("models", "export", models / "tiny-florence"), "differs from PyTorch")
    result = runner("models", "export", models / "tiny-vit-gpt2", "--int8", "--json")
    assert result.returncode == 0, result.stderr
    folder, int8_folder = json.loads(result.stdout)["graphs"], json.loads(result.stdout)["int8_graphs"]
    assert int8_folder.startswith(f"{folder}-int8-") and (Path(int8_folder) / onnx_export.MANIFEST).is_file()
    monkeypatch.setattr(environment, "_chosen", {})
    photo = tmp_path / "photo.png"
    make_picture(random.Random(2))[0].save(photo)
    captioned = runner("caption", photo, "--model", models / "tiny-vit-gpt2", "--runtime", "onnx", "--json")
    assert captioned.returncode == 0, captioned.stderr
    assert environment.chosen()["CAPTIONER_RUNTIME"] == "onnx"  # what Ray workers are started with too
    monkeypatch.setattr(environment, "_chosen", {})
    monkeypatch.setenv("CAPTIONER_RUNTIME", "onnx")
    monkeypatch.setenv("CAPTIONER_PRECISION", "int8")  # int8 through ONNX Runtime, for both
    app = make_app(models)
    try:
        listed = {m["name"]: m for m in app.test_client().get("/api/v1/models").json["models"]}
        assert (listed["tiny-vit-gpt2"]["runtime"], listed["tiny-vit-gpt2"]["precision"]) == ("onnx", "int8")
        assert listed["tiny-florence"]["runtime"] == "onnx"  # exported at load: the refused one was not cached
        captioner = app.extensions["captioner"].models["tiny-vit-gpt2"].captioner
        assert str(captioner.cached_decoder.graphs.folder) == int8_folder  # the int8 graphs made ahead of time
        assert "ONNX Runtime, int8" in app.test_client().get("/models").get_data(as_text=True)
    finally:
        app.extensions["captioner"].close()


# --- int8 through ONNX Runtime: dynamic quantisation of the checked float32 graphs ---------------------------


def onnx_ops(path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def integer_weight_types(path) -> set[int]:
    """The element types of the weights (second inputs) of a graph's integer products."""
    import onnx

    graph = onnx.load(str(path)).graph
    types = {tensor.name: tensor.data_type for tensor in graph.initializer}
    return {types.get(node.input[1]) for node in graph.node if node.op_type == "MatMulInteger"}


def test_int8_graphs_are_quantised_from_the_float32_ones_and_cached_beside_them(blip):
    int8 = captioner_of(blip.model, blip.parts.processor, precision="int8")
    assert (int8.runtime, int8.precision) == ("onnx", "int8")
    graphs, float_graphs = int8.cached_decoder.graphs, blip.cached_decoder.graphs
    assert graphs.folder.parent == float_graphs.folder.parent and graphs.folder.name.startswith(
        f"{float_graphs.folder.name}-int8-")  # their own key, beside the float32 graphs they come from
    manifest = json.loads((graphs.folder / onnx_export.MANIFEST).read_text())
    assert manifest["precision"] == "int8" and manifest["quantisation"]["per_channel"]
    for name in ("encoder", "step"):  # every product with a constant weight is an integer one now
        ops = onnx_ops(getattr(graphs, name))
        assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops and "Gemm" not in ops
        assert "MatMulInteger" not in onnx_ops(getattr(float_graphs, name))
        assert integer_weight_types(getattr(graphs, name)) == {onnx_int8_type()}  # stored as int8 values
    # PyTorch, which runs the first step, keeps its float32 weights (nothing to quantise twice)
    assert int8.model.dtype == torch.float32 and not any("Int8" in type(m).__name__ for m in int8.model.modules())
    written = graphs.step.stat().st_mtime_ns
    again = captioner_of(blip.model, blip.parts.processor, precision="int8").cached_decoder.graphs
    assert again.folder == graphs.folder and again.step.stat().st_mtime_ns == written  # from the cache


def onnx_int8_type() -> int:
    import onnx

    return onnx.TensorProto.INT8


INT8_MODELS = {  # random tiny models whose word choices are not decided by hair-thin margins (see below)
    "vit-gpt2": lambda: tiny_parts(seed=1, decoder_init=0.1),
    "blip": lambda: tiny_blip(text_init=0.3),
    "git": lambda: tiny_git(init=0.05),
    "florence-2": lambda: tiny_florence2(init=0.1),
}


@pytest.mark.parametrize("name", list(INT8_MODELS))
def test_onnx_int8_captions_agree_with_float32_and_its_encoder_stays_close(name, images):
    """The agreement figure on a tiny random model: at least two of three beam captions identical to float32's
    (identical ones scored within 0.5, or 1% of a long caption's score), and the encoder's output at cosine 0.999 or more to float32's. The tiny
    models of the float32 tests are too peaked for this (their weights' scale, 0.3 to 0.5, makes beams that
    part on margins below int8's rounding; agreement there was 0 to 3 in 12): these use smaller scales."""
    import numpy as np

    parts = INT8_MODELS[name]()
    exact, int8 = captioner_of(*parts), captioner_of(*parts, precision="int8")
    assert (exact.runtime, int8.runtime, int8.precision) == ("onnx", "onnx", "int8")
    option = exact.parts.architecture.prompt
    decoding = exact.default_decoding.with_changes(prompt=option.default if option and option.default else "")
    pictures = images + [make_picture(random.Random(seed))[0] for seed in (5, 6, 7)]
    ours, theirs = int8.caption(pictures, decoding), exact.caption(pictures, decoding)
    same = [(a, b) for a, b in zip(ours, theirs) if a.text == b.text]
    assert len(same) >= 2 * len(pictures) / 3, [(a.text, b.text) for a, b in zip(ours, theirs)]
    assert all(a.score == pytest.approx(b.score, rel=0.01, abs=0.5) for a, b in same)  # Florence-2's: 40 tokens
    inputs = onnx_export.encoder_inputs(exact.cached_decoder.torch_decoder,
                                        {k: v.numpy() for k, v in probe_of(exact).items()})
    flat = [np.concatenate([t.ravel() for t in made.cached_decoder.encoder.run(None, dict(
        zip([i.name for i in made.cached_decoder.encoder.get_inputs()], inputs)))]).astype(np.float64)
        for made in (exact, int8)]
    assert flat[0] @ flat[1] / (np.linalg.norm(flat[0]) * np.linalg.norm(flat[1])) >= 0.999


def probe_of(captioner) -> dict:
    from captioner.models.transformers.model_inputs import probe_inputs

    return probe_inputs(captioner.parts)


def test_precision_int8_on_the_onnx_runtime_and_what_auto_picks_there(monkeypatch):
    monkeypatch.setattr(precision, "ONNX_INT8_AGREEMENT", {"blip": 0.97, "git": 0.90})
    assert precision_for_runtime("onnx", "int8", "vit-gpt2") == "int8"  # asked for: always
    assert precision_for_runtime("onnx", "auto", "blip", "cpu") == "int8"  # measured to agree, 95% or more
    assert precision_for_runtime("onnx", "auto", "git", "cpu") == "float32"  # measured below 95%
    assert precision_for_runtime("onnx", "auto", "florence-2", "cpu") == "float32"  # never measured
    assert precision_for_runtime("auto", "int8", "blip", "cpu") == "int8"  # auto runtime: int8 stays in PyTorch
    with pytest.raises(ValueError, match="float32 or int8"):
        precision_for_runtime("onnx", "bfloat16")
    monkeypatch.undo()
    measured = json.loads((ROOT / "benchmarks" / "precision_agreement.json").read_text())
    assert precision.ONNX_INT8_AGREEMENT == {name: measured[name]["onnx int8 beam"]["share"]
                                             for name in precision.ONNX_INT8_AGREEMENT}  # the latest measurement's


def test_onnx_int8_that_cannot_be_built_runs_pytorch_int8_with_one_line(monkeypatch, caplog):
    from captioner.models.transformers import onnx_int8

    monkeypatch.setitem(onnx_int8.QUANTISATION, "weight_type", "QInt3")  # no such type: the quantiser fails
    with caplog.at_level(logging.WARNING, logger="captioner.models.transformers.onnx_step"):
        captioner = captioner_of(*tiny_parts(seed=1, decoder_init=0.5), precision="int8")
    assert (captioner.runtime, captioner.precision) == ("torch", "int8")
    assert any(type(m).__name__ == "Int8Linear" for m in captioner.model.modules())  # PyTorch's int8 instead
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("vit-gpt2 runs in PyTorch, not ONNX Runtime: ONNX Runtime's int8 quantisation")
