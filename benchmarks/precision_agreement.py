"""How often bfloat16 and int8 captions equal float32 ones, on small models of each cached architecture the
project fine-tunes (ViT-GPT2, BLIP, GIT) trained here: the figures behind the default precision (``auto`` may
choose a precision only where at least 95% of beam captions are identical).

Fine-tunes a small model of each architecture (built from configs, hidden size 64, tokenizer made on the spot)
on the synthetic shapes set with the project's own trainer for a few epochs, then captions the held-out
(validation and test) images with the trained bundle loaded once per precision, with the default beam search
and with greedy search. Writes, per architecture and precision, the share of identical captions and the
largest score difference among identical ones to ``benchmarks/precision_agreement.json`` (and prints it).
``captioner.models.transformers.precision.INT8_AGREEMENT`` holds the int8 beam shares of the latest run.
Florence-2 is not fine-tuned by the project (see ``captioner train``), so it has no figure here; ``auto``
never picks int8 for it.

    PYTHONPATH=src python benchmarks/precision_agreement.py        # about 3 minutes on 2 quiet cores
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
sys.path.insert(0, str(ROOT / "tests"))  # the tiny model builders the tests share (support/)

PRECISIONS = ("bfloat16", "int8")


def measure(images: int = 800, epochs: int = 6, architectures=("vit-gpt2", "blip", "git")) -> dict:
    import torch
    from support.tiny_image_to_text import save_tiny

    from captioner.config import ImageToTextSettings
    from captioner.data.images import load_image
    from captioner.data.prepare import prepare_dataset
    from captioner.data.prepared import PreparedData
    from captioner.data.shapes import write_shapes_dataset
    from captioner.models.base import Decoding
    from captioner.models.bundle import read_bundle_info
    from captioner.models.transformers.image_to_text import (ImageToTextCaptioner, decoding_for, load_model_folder,
                                                             settings_of)
    from captioner.models.transformers.precision import cpu_has_native_bfloat16
    from captioner.training.image_to_text import train_image_to_text

    result = {"images": images, "epochs": epochs, "cpu_native_bf16": cpu_has_native_bfloat16(),
              "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    os.environ["CAPTIONER_PRECISION"] = "float32"  # the trainer's own validation pass
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepared = tmp / "prepared"
        prepare_dataset(write_shapes_dataset(tmp / "shapes", images=images, seed=11), prepared)
        data = PreparedData(prepared)
        held_out = data.split("val") + data.split("test")  # images the weights were not trained on
        pictures = [load_image(data.image_path(item.image)) for item in held_out]
        for architecture in architectures:
            started = time.perf_counter()
            sizes = {"vit-gpt2": {"hidden": 64}, "blip": {"hidden": 64}, "git": {"hidden": 64}}[architecture]
            source = save_tiny(architecture, tmp / f"small-{architecture}", **sizes)
            settings = ImageToTextSettings(epochs=epochs, batch_size=16, learning_rate=2e-3, patience=epochs,
                                           max_length=16)
            bundle = train_image_to_text(prepared, tmp / "models" / architecture, settings, from_=str(source),
                                         java=False)
            info = read_bundle_info(bundle)
            figures = {"train_seconds": round(time.perf_counter() - started), "held_out_images": len(pictures)}
            captioners = {precision: ImageToTextCaptioner(load_model_folder(bundle / "model"), info,
                                                          decoding_for(settings_of(info)), precision=precision)
                          for precision in ("float32", *PRECISIONS)}
            for name, decoding in (("beam", captioners["float32"].default_decoding),
                                   ("greedy", Decoding(max_length=16))):
                full = captioners["float32"].caption(pictures, decoding)
                for precision in PRECISIONS:
                    other = captioners[precision].caption(pictures, decoding)
                    same = [(a, b) for a, b in zip(full, other) if a.text == b.text]
                    figures[f"{precision} {name}"] = {
                        "identical": len(same), "share": round(len(same) / len(full), 4),
                        "max_score_difference": round(max((abs(a.score - b.score) for a, b in same), default=0), 4),
                        "example_float32": full[0].text, f"example_{precision}": other[0].text}
            result[architecture] = figures
            print(json.dumps({architecture: figures}), file=sys.stderr, flush=True)
    return result


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    text = json.dumps(measure(), indent=2)
    (ROOT / "benchmarks" / "precision_agreement.json").write_text(text + "\n", encoding="utf-8")
    print(text)
