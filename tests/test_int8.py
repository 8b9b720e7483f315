"""int8 decoder weights: per-output-channel quantization built at load time from the model's own weights, run
through PyTorch's int8 kernel; an int8 captioner's captions agree with float32 ones on tiny peaked models of
each cached architecture, and the image encoder keeps its float weights."""

from __future__ import annotations

import copy
import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from support.tiny_image_to_text import tiny_blip, tiny_florence2  # noqa: E402
from support.tiny_vit_gpt2 import single_thread, tiny_parts  # noqa: E402

from captioner.data.shapes import make_picture  # noqa: E402
from captioner.models.base import Decoding  # noqa: E402
from captioner.models.bundle import BundleInfo  # noqa: E402
from captioner.models.transformers.image_to_text import ImageToTextCaptioner, ModelParts  # noqa: E402
from captioner.models.transformers.int8 import int8_linear_class, quantize_weight  # noqa: E402
from captioner.models.transformers.precision import cpu_has_native_bfloat16, resolve_precision  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


def test_per_channel_int8_weights_round_to_within_half_a_step_and_multiply_as_the_float_ones():
    weight = torch.randn(48, 32, generator=torch.Generator().manual_seed(0)) * torch.linspace(0.01, 3, 48)[:, None]
    values, scales = quantize_weight(weight)
    assert values.dtype == torch.int8 and scales.shape == (48,)
    assert ((values.float() * scales[:, None] - weight).abs() <= scales[:, None] / 2 + 1e-7).all()
    bias = torch.randn(48)
    layer = int8_linear_class()(weight, bias, torch.float32)
    x = torch.randn(5, 32)
    # The kernel takes bfloat16 activations and scales and returns bfloat16: the dequantized product of the
    # bfloat16-rounded inputs, to bfloat16's rounding of the result (8 bits of mantissa).
    dequantized = values.float() * scales.bfloat16().float()[:, None]
    expected = x.bfloat16().float() @ dequantized.T + bias
    assert torch.allclose(layer(x), expected, atol=2e-2, rtol=8e-3)
    exact = torch.nn.functional.linear(x, weight, bias)
    assert (layer(x) - exact).norm() / exact.norm() < 0.02  # int8 rounding: about 1% of the output


def test_auto_chooses_int8_only_for_architectures_measured_to_agree(monkeypatch):
    import json
    from pathlib import Path

    from captioner.models.transformers.precision import INT8_AGREEMENT, INT8_AUTO_SHARE

    monkeypatch.delenv("CAPTIONER_PRECISION", raising=False)
    measured = json.loads((Path(__file__).parents[1] / "benchmarks" / "precision_agreement.json").read_text())
    # The table auto reads is the latest measurement's int8 beam shares, not numbers of its own.
    assert INT8_AGREEMENT == {name: measured[name]["int8 beam"]["share"] for name in INT8_AGREEMENT}
    assert resolve_precision(None, "cpu", "blip") == "int8"  # 97% identical beam captions
    for architecture in ("vit-gpt2", "git", "florence-2", "smolvlm", None):  # below 95%, or never measured
        assert resolve_precision(None, "cpu", architecture) in ("float32", "bfloat16")
    assert all((resolve_precision(None, "cpu", name) == "int8") == (share >= INT8_AUTO_SHARE)
               for name, share in INT8_AGREEMENT.items())
    assert resolve_precision("int8", "cpu", "florence-2") == "int8"  # asked for: always
    monkeypatch.setenv("CAPTIONER_PRECISION", "float32")
    assert resolve_precision(None, "cpu", "blip") == "float32"
    monkeypatch.setenv("CAPTIONER_PRECISION", "int8")
    assert resolve_precision(None, "cpu") == "int8"


def tiny_models():
    model, image_processor, tokenizer = tiny_parts(seed=1, decoder_init=0.5)
    blip, blip_processor = tiny_blip(text_init=0.3)
    florence, florence_processor = tiny_florence2(init=0.3)
    return {
        "vit-gpt2": ModelParts(model, image_processor, tokenizer),
        "blip": ModelParts(blip, blip_processor.image_processor, blip_processor.tokenizer, blip_processor),
        "florence-2": ModelParts(florence, florence_processor.image_processor, florence_processor.tokenizer,
                                 florence_processor),
    }


# On a CPU with native bf16 (AMX), PyTorch's int8 kernel takes another path, and the tiny random Florence-2
# agrees on one caption in three there (measured); the real models' agreement is benchmarks/precision_agreement.py's.
FLORENCE2_ON_NATIVE_BF16 = pytest.mark.xfail(cpu_has_native_bfloat16(), strict=False,
                                             reason="the tiny random Florence-2 diverges on the AMX int8 kernel")


@pytest.mark.parametrize("name", ["vit-gpt2", "blip", pytest.param("florence-2", marks=FLORENCE2_ON_NATIVE_BF16)])
def test_int8_captions_agree_with_float32_and_the_encoder_keeps_float_weights(name):
    rng = random.Random(4)
    images = [make_picture(rng)[0] for _ in range(3)]
    parts = tiny_models()[name]
    captions = {}
    for precision in ("float32", "int8"):
        captioner = ImageToTextCaptioner(copy.deepcopy(parts), BundleInfo(kind="image-to-text", name=name),
                                         precision=precision, device="cpu")
        captions[precision] = captioner.caption(images, Decoding.beam(3, max_length=8))
    model = captioner.model
    quantized = [m for m in model.modules() if type(m).__name__ == "Int8Linear"]
    assert quantized and all(m.weight_int8.dtype == torch.int8 for m in quantized)
    assert not any(type(m).__name__ == "Linear" for m in captioner_decoder(model).modules())
    encoder_linears = [m for m in captioner_encoder(model).modules() if isinstance(m, torch.nn.Linear)]
    assert encoder_linears and all(m.weight.dtype == model.dtype for m in encoder_linears)
    same = [(a, b) for a, b in zip(captions["float32"], captions["int8"]) if a.text == b.text]
    assert len(same) >= 2
    assert all(abs(a.score - b.score) < 0.5 for a, b in same)


def captioner_decoder(model):
    return {"VisionEncoderDecoderModel": lambda: model.decoder, "BlipForConditionalGeneration": lambda: model.text_decoder,
            "Florence2ForConditionalGeneration": lambda: model.model.language_model.decoder}[type(model).__name__]()


def captioner_encoder(model):
    return {"VisionEncoderDecoderModel": lambda: model.encoder, "BlipForConditionalGeneration": lambda: model.vision_model,
            "Florence2ForConditionalGeneration": lambda: model.model.vision_tower}[type(model).__name__]()


def test_the_precision_option_wins_over_the_environment_for_that_run(tmp_path, monkeypatch, capsys):
    import json

    from support.tiny_vit_gpt2 import save_tiny_model

    from captioner import environment
    from captioner.cli import main
    from captioner.models.registry import load_captioner

    monkeypatch.setattr(environment, "_chosen", {})  # what an option chooses lasts for its process: start clean
    folder = save_tiny_model(tmp_path / "vit", seed=1, decoder_init=0.5)
    picture = tmp_path / "picture.png"
    make_picture(random.Random(2))[0].save(picture)
    scores = {}
    for precision in ("float32", "int8"):
        monkeypatch.setenv("CAPTIONER_PRECISION", precision)
        loaded = load_captioner(folder)
        assert loaded.precision == precision
        scores[precision] = loaded.caption([make_picture(random.Random(2))[0]])[0].score
    assert scores["float32"] != scores["int8"]  # int8 rounding shows in the log-probability
    monkeypatch.setenv("CAPTIONER_PRECISION", "float32")
    assert main(["caption", str(picture), "--model", str(folder), "--precision", "int8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["captions"][0]["score"] == pytest.approx(scores["int8"], abs=1e-5)
    with pytest.raises(SystemExit):
        main(["caption", str(picture), "--model", str(folder), "--precision", "fp4"])
    assert "invalid choice: 'fp4'" in capsys.readouterr().err
