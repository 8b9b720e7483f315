"""What the web and serving tests share: apps serving a models folder, test images, copies of a real
bundle, and a wrapper that holds the real model busy for timeout/overload tests."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
from pathlib import Path

from PIL import Image

def copy_bundle(source: Path, target_root: Path, name: str, **info_changes) -> Path:
    """A copy of a real bundle under another name, with captioner.json fields changed (e.g. dataset)."""
    target = target_root / name
    shutil.copytree(source, target)
    info_path = target / "captioner.json"
    info = json.loads(info_path.read_text())
    info.update(name=name, **info_changes)
    info_path.write_text(json.dumps(info))
    return target


def make_app(models_dir: Path, **settings):
    from captioner.web import create_app

    config = {"models_dir": str(models_dir), "try_pretrained": False, "build_demo": False,
              "secret_key": "test-secret", "TESTING": True, **settings}
    return create_app(config)


def data_url(data: bytes, kind: str = "png") -> str:
    """An image as the base64 data: URL the OpenAI protocols carry."""
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


def shapes_image_bytes(shapes_dataset: Path, index: int = 0, fmt: str = "PNG") -> bytes:
    """One picture of the shapes data set, encoded as ``fmt``."""
    path = sorted((shapes_dataset / "Images").iterdir())[index]
    with Image.open(path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


class GatedCaptioner:
    """The real model behind a gate: ``caption`` waits until the test opens the gate, then runs the model.

    It lets a test hold the model busy for exactly as long as it needs (to fill a queue, or to outlast a
    request's timeout) while every caption still comes from the real model.
    """

    def __init__(self, model, name: str = "gated"):
        self.model = model
        self.name = name
        self.kind = model.kind
        self.info = model.info
        self.default_decoding = model.default_decoding
        self.gate = threading.Event()
        self.entered = threading.Event()  # set when a batch reached the model
        self.calls = 0

    def caption(self, images, decoding=None):
        self.calls += 1
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise RuntimeError("the test never opened the gate")
        return self.model.caption(images, decoding)


def tiny_vit_bundle(root: Path, name: str = "vit-tiny") -> Path:
    """A real ViT-GPT2 bundle, tiny and with random weights (built from configs; no network)."""
    from support.tiny_vit_gpt2 import tiny_parts

    from captioner.models.bundle import BundleInfo
    from captioner.models.transformers.vit_gpt2 import ModelParts, write_bundle

    parts = ModelParts(*tiny_parts(seed=1, decoder_init=0.5))
    return write_bundle(root / name, parts, BundleInfo(kind="vit-gpt2", name=name, dataset="shapes",
                                                       backbone="vit-tiny"))
