"""How often bfloat16 captions equal float32 ones, on a ViT-GPT2 trained here (the figure behind the default
precision, see the README).

Fine-tunes a small ViT + GPT-2 (built from configs, hidden size 64, word-level tokenizer trained on the
spot) on the synthetic shapes set with the project's own trainer for a few epochs, then captions the held-out
(validation and test) images with the trained bundle loaded twice, once per precision, with the default beam search and with
greedy search. Prints the share of identical captions and the largest score difference, as JSON.

    PYTHONPATH=src python benchmarks/bf16_agreement.py        # about two minutes on 2 cores
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the tiny model builder the tests share (support/)


def measure(images: int = 400, epochs: int = 6) -> dict:
    import torch
    from support.tiny_vit_gpt2 import save_tiny_model

    from captioner.config import VitGpt2Settings
    from captioner.data.images import load_image
    from captioner.data.prepare import prepare_dataset
    from captioner.data.prepared import PreparedData
    from captioner.data.shapes import write_shapes_dataset
    from captioner.models.base import Decoding
    from captioner.models.bundle import read_bundle_info
    from captioner.models.transformers.precision import cpu_has_native_bfloat16
    from captioner.models.transformers.vit_gpt2 import VitGpt2Captioner, decoding_for, load_model_folder, settings_of
    from captioner.training.vit_gpt2 import train_vit_gpt2

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepared = tmp / "prepared"
        prepare_dataset(write_shapes_dataset(tmp / "shapes", images=images, seed=11), prepared)
        source = save_tiny_model(tmp / "small", hidden=64)
        settings = VitGpt2Settings(epochs=epochs, batch_size=16, learning_rate=2e-3, patience=epochs, max_length=16)
        os.environ["CAPTIONER_PRECISION"] = "float32"  # the trainer's own validation pass
        bundle = train_vit_gpt2(prepared, tmp / "models" / "shapes-vit", settings, from_=str(source), java=False)
        trained_s = time.perf_counter() - started
        data = PreparedData(prepared)
        held_out = data.split("val") + data.split("test")  # images the weights were not trained on
        pictures = [load_image(data.image_path(item.image)) for item in held_out]
        info = read_bundle_info(bundle)
        captioners = {precision: VitGpt2Captioner(load_model_folder(bundle / "model"), info,
                                                  decoding_for(settings_of(info)), precision=precision)
                      for precision in ("float32", "bfloat16")}
        result = {"images": len(pictures), "epochs": epochs, "train_seconds": round(trained_s),
                  "cpu_native_bf16": cpu_has_native_bfloat16(),
                  "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
        for name, decoding in (("beam", captioners["float32"].default_decoding), ("greedy", Decoding(max_length=16))):
            full = captioners["float32"].caption(pictures, decoding)
            half = captioners["bfloat16"].caption(pictures, decoding)
            same = sum(a.text == b.text for a, b in zip(full, half))
            result[name] = {"identical": same, "share": round(same / len(full), 4),
                            "max_score_difference": round(max(abs(a.score - b.score) for a, b in zip(full, half)
                                                              if a.text == b.text), 4),
                            "example_float32": full[0].text, "example_bfloat16": half[0].text}
    return result


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(measure(), indent=2))
