"""How often bfloat16 and int8 captions equal float32 ones, on small models of each cached architecture the
project fine-tunes (ViT-GPT2, BLIP, GIT) trained here: the figures behind the default precision (``auto`` may
choose a precision only where at least 95% of beam captions are identical).

Fine-tunes a small model of each architecture (built from configs, hidden size 64, tokenizer made on the spot)
on the synthetic shapes set with the project's own trainer for a few epochs, then captions the held-out
(validation and test) images with the trained bundle loaded once per precision, with the default beam search
and with greedy search. Writes, per architecture and precision, the share of identical captions and the
largest score difference among identical ones to ``benchmarks/precision_agreement.json`` (and prints it).
``captioner.models.transformers.precision.INT8_AGREEMENT`` holds the int8 beam shares of the latest run, and
``ONNX_INT8_AGREEMENT`` the ``onnx int8`` ones (int8 through ONNX Runtime's dynamic quantisation, beside the
ONNX Runtime float32 graphs the float32 captions then come from; the encoder's cosine to float32 on the
held-out images is recorded with them).
Florence-2 is not fine-tuned by the project (see ``captioner train``), so it has no figure here; ``auto``
never picks int8 for it.

    PYTHONPATH=src python benchmarks/precision_agreement.py        # about 3 minutes on 2 quiet cores
    AGREEMENT_ONLY="onnx int8" PYTHONPATH=src python benchmarks/precision_agreement.py

``AGREEMENT_ONLY`` measures only the precisions it names (comma-separated) and merges them into the JSON file,
keeping the other figures as they were measured (with the CPU each was measured on).
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

PRECISIONS = ("bfloat16", "int8", "onnx int8")  # "onnx int8": --runtime onnx --precision int8


def captioner_in(precision: str, bundle: Path, info, decoding):
    """The trained bundle loaded in ``precision`` (an "onnx ..." one on ONNX Runtime, the others on PyTorch)."""
    from captioner.models.transformers.image_to_text import ImageToTextCaptioner, load_model_folder

    runtime, _, number_format = precision.rpartition(" ")
    made = ImageToTextCaptioner(load_model_folder(bundle / "model"), info, decoding, precision=number_format,
                                runtime=runtime or "torch")
    if made.runtime != (runtime or "torch"):
        raise RuntimeError(f"{precision} did not run on {runtime or 'torch'}")
    return made


def encoder_cosine(ours, reference, pictures) -> float:
    """The cosine between two ONNX captioners' encoder outputs (every context tensor, flat) on ``pictures``."""
    import numpy as np

    from captioner.models.transformers.model_inputs import model_inputs

    feed = {"pixels": model_inputs(reference.parts, pictures, "", "cpu")["pixel_values"].numpy()}
    a, b = (np.concatenate([t.ravel() for t in made.cached_decoder.encoder.run(None, feed)]).astype(np.float64)
            for made in (reference, ours))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def measure(images: int = 800, epochs: int = 6, architectures=("vit-gpt2", "blip", "git"),
            precisions=PRECISIONS) -> dict:
    import torch
    from support.tiny_image_to_text import save_tiny

    from captioner.config import ImageToTextSettings
    from captioner.data.images import load_image
    from captioner.data.prepare import prepare_dataset
    from captioner.data.prepared import PreparedData
    from captioner.data.shapes import write_shapes_dataset
    from captioner.models.base import Decoding
    from captioner.models.bundle import read_bundle_info
    from captioner.models.transformers.image_to_text import decoding_for, settings_of
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
            onnx = any(p.startswith("onnx") for p in precisions)  # then float32 on ONNX Runtime (equal to PyTorch's)
            captioners = {precision: captioner_in(precision, bundle, info, decoding_for(settings_of(info)))
                          for precision in ("onnx float32" if onnx else "float32", *precisions)}
            captioners["float32"] = captioners.pop("onnx float32", None) or captioners["float32"]
            if onnx:
                figures["onnx int8 encoder cosine"] = round(encoder_cosine(captioners["onnx int8"],
                                                                           captioners["float32"], pictures), 6)
            for name, decoding in (("beam", captioners["float32"].default_decoding),
                                   ("greedy", Decoding(max_length=16))):
                full = captioners["float32"].caption(pictures, decoding)
                for precision in precisions:
                    other = captioners[precision].caption(pictures, decoding)
                    same = [(a, b) for a, b in zip(full, other) if a.text == b.text]
                    figures[f"{precision} {name}"] = {
                        "identical": len(same), "share": round(len(same) / len(full), 4),
                        "max_score_difference": round(max((abs(a.score - b.score) for a, b in same), default=0), 4),
                        "example_float32": full[0].text, f"example_{precision}": other[0].text}
            result[architecture] = figures
            print(json.dumps({architecture: figures}), file=sys.stderr, flush=True)
    return result


def merged(earlier: dict, new: dict, precisions) -> dict:
    """``earlier`` with ``new``'s figures for ``precisions`` (and the CPU they were measured on) put in."""
    result = {**earlier, **{f"{p} measured on": {k: new[k] for k in ("cpu_native_bf16", "torch_cpu_capability")}
                            for p in precisions}}
    for architecture, figures in new.items():
        if isinstance(figures, dict) and architecture in earlier:
            result[architecture] = {**earlier[architecture],
                                    **{k: v for k, v in figures.items() if k.startswith(tuple(precisions))}}
    return result


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = ROOT / "benchmarks" / "precision_agreement.json"
    only = [p.strip() for p in os.environ.get("AGREEMENT_ONLY", "").split(",") if p.strip()]
    result = measure(precisions=tuple(only) or PRECISIONS)
    if only:
        result = merged(json.loads(path.read_text(encoding="utf-8")), result, only)
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
    print(text)
