"""One model as the server holds it: the captioner, its micro-batching queue, where it came from and what it
costs here (``/api/v1/models`` and the models page describe it from this), and how it is made ready to serve:
a warm-up at both batch shapes, then one photo's latency measured for the models page."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from captioner.models.base import Captioner, styles_of
from captioner.models.bundle import BundleInfo
from captioner.web.batching import MicroBatcher

log = logging.getLogger(__name__)

DEMO_DATASET = "shapes"  # data set of the demo model: not a real photo captioner


@dataclass
class LoadedModel:
    captioner: Captioner
    batcher: MicroBatcher
    source: str  # "bundle", "pretrained" or "demo"
    path: Path | None = None  # bundle folder, when it came from one
    size_bytes: int | None = None  # bundle size on disk
    load_s: float = 0.0  # seconds the load took
    latency_ms: float | None = None  # one image at the default decoding, measured on this machine at start

    @property
    def name(self) -> str:
        return self.captioner.name

    @property
    def info(self) -> BundleInfo:
        return self.captioner.info

    @property
    def architecture(self) -> str:
        """"vit-gpt2", "blip", ... for image-to-text models; the kind for the others."""
        return getattr(self.captioner, "architecture", None) or self.captioner.kind

    def describe(self) -> dict:
        info = self.info
        option = getattr(self.captioner, "prompt_option", None)
        reference = getattr(self.captioner, "reference", None)
        published = None if reference is None or reference.coco_cider is None else {
            "metric": "COCO Karpathy-test CIDEr", "value": reference.coco_cider, "source": reference.quality_source}
        return {"name": self.name, "kind": self.captioner.kind, "architecture": self.architecture,
                "dataset": info.dataset, "backbone": info.backbone,
                "source": self.source, "size_bytes": self.size_bytes, "metrics": info.metrics,
                "created_at": info.created_at, "version": info.version, "load_seconds": round(self.load_s, 2),
                "latency_ms": self.latency_ms, "published": published,
                "prompt": option.to_dict() if option else None, "styles": list(styles_of(self.captioner)),
                "default_decoding": self.captioner.default_decoding.to_dict(), "demo": info.dataset == DEMO_DATASET,
                # what computes it: "torch" or "onnx" (ONNX Runtime), in "float32", "bfloat16" or "int8";
                # None for kinds without the choice (Keras, remote)
                "runtime": getattr(self.captioner, "runtime", None),
                "precision": getattr(self.captioner, "precision", None)}


def warm_up(captioner: Captioner, batch_size: int = 1) -> None:
    """Caption one blank picture, then a full micro-batch of them, before the model is served (``/readyz``
    says "loading" until then), so no visitor pays for the first-call setup of either batch shape."""
    from PIL import Image

    if not getattr(captioner, "needs_warm_up", True):  # a remote model: warming would only send requests
        return
    blank = Image.new("RGB", (64, 64), "white")
    try:
        for size in sorted({1, batch_size}):
            captioner.caption([blank] * size)
    except Exception as error:  # a model that cannot warm up is still served; its requests will say why
        log.warning("warming up %s failed: %s", captioner.name, error)


def measure_latency(captioner: Captioner) -> float | None:
    """Milliseconds to caption one photo-sized picture at the model's default decoding (after warm-up)."""
    from PIL import Image

    picture = Image.effect_noise((640, 480), 64).convert("RGB")
    try:
        started = time.perf_counter()
        captioner.caption([picture])
        return round((time.perf_counter() - started) * 1000, 1)
    except Exception as error:  # measured for the models page only: never a reason not to serve
        log.warning("measuring %s failed: %s", captioner.name, error)
        return None
