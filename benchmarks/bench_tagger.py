"""A WD tagger on the CPU: images/s at batch 1 and batch 8 through the tagger kind, against one image per
``session.run`` (what the published demo and most scripts do).

The graph has wd-vit-tagger-v3's shape, with random weights: a ViT-B/16 at 448 px (12 layers of 768, 12 heads,
785 tokens) and 10,861 sigmoid outputs, taking NHWC BGR 0-255 input as published. It is exported once with
``torch.onnx.export`` into the cache folder (CAPTIONER_CACHE_DIR/bench/) with its tag list of the published
split (8,106 general, 2,751 character, 4 rating tags), and reused after that.
- baseline: for each image, the published pre-processing and one ``session.run`` on a batch of one;
- ours: ``WDTagger.caption`` (the same pre-processing, tag selection and the shared session) with
  ``batch_size`` 8, and with ``batch_size`` 1, the kind's default since the batch of 8 measured slower here
  (the batch-1 row shows what the kind's own path costs).
Both batch shapes are run once before timing; the sides take turns over 3 rounds and each keeps its best
(BENCH_QUICK=1: one round of 8 images per side, 4 at batch 1; a full run 16).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure, run_alone  # noqa: E402

SIZE, PATCH, WIDTH, LAYERS, HEADS = 448, 16, 768, 12, 12
GENERAL, CHARACTER, RATINGS = 8106, 2751, 4


def graph_folder() -> Path:
    """The full-size random tagger's folder, exported on first use."""
    from captioner import environment

    folder = environment.current().cache_base / "bench" / "wd-vit-tagger-v3-shaped"
    if (folder / "model.onnx").is_file() and (folder / "selected_tags.csv").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    export(folder / "model.onnx")
    rows = ["tag_id,name,category,count"]
    rows += [f"{i},rating_{i},9,0" for i in range(RATINGS)]
    rows += [f"{RATINGS + i},general_tag_{i},0,0" for i in range(GENERAL)]
    rows += [f"{RATINGS + GENERAL + i},character_tag_{i},4,0" for i in range(CHARACTER)]
    (folder / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def export(path: Path) -> None:
    import torch
    from torch import nn

    class Block(nn.Module):  # a pre-norm ViT block, spelled out so the exporter sees plain operators
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
            self.qkv, self.out = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)
            self.mlp = nn.Sequential(nn.Linear(WIDTH, 4 * WIDTH), nn.GELU(), nn.Linear(4 * WIDTH, WIDTH))

        def forward(self, x):  # (batch, tokens, 768)
            batch, tokens, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(batch, tokens, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
            attended = torch.softmax(q @ k.transpose(-1, -2) / (WIDTH // HEADS) ** 0.5, dim=-1) @ v
            x = x + self.out(attended.transpose(1, 2).reshape(batch, tokens, WIDTH))
            return x + self.mlp(self.norm2(x))

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.patches = nn.Conv2d(3, WIDTH, PATCH, PATCH)
            self.cls = nn.Parameter(torch.zeros(1, 1, WIDTH))
            self.positions = nn.Parameter(torch.randn(1, (SIZE // PATCH) ** 2 + 1, WIDTH) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(LAYERS)))
            self.norm = nn.LayerNorm(WIDTH)
            self.head = nn.Linear(WIDTH, RATINGS + GENERAL + CHARACTER)

        def forward(self, pixels):  # (batch, 448, 448, 3) BGR 0-255, as the published graphs take it
            x = pixels.flip(-1).permute(0, 3, 1, 2) / 127.5 - 1.0  # (batch, 3, 448, 448) RGB in -1..1
            x = self.patches(x).flatten(2).transpose(1, 2)  # (batch, 784, 768)
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.positions  # (batch, 785, 768)
            x = self.norm(self.blocks(x))
            return torch.sigmoid(self.head(x.mean(dim=1)))  # (batch, 10861)

    model = Tagger().eval()
    example = torch.rand(1, SIZE, SIZE, 3) * 255
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["predictions_sigmoid"],
                          dynamic_axes={"input": {0: "batch"}, "predictions_sigmoid": {0: "batch"}},
                          opset_version=17, dynamo=False)


def photos(count: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(count)]


def images_per_second(work, count: int) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def run(quick: bool) -> list[dict]:
    import numpy as np

    from captioner.models.registry import load_captioner
    from captioner.models.taggers import with_settings
    from captioner.models.taggers.wd import prepare

    tagger = load_captioner(graph_folder())
    count = 8 if quick else 16
    images = photos(count)
    session, name = tagger.session, tagger.input.name
    batched_tagger, single_tagger = with_settings(tagger, batch_size=8), with_settings(tagger, batch_size=1)
    batched_tagger.caption(images[:8])  # ONNX Runtime's first-call setup of each batch shape is paid by no side
    single_tagger.caption(images[:1])

    def one_by_one(chosen):
        for image in chosen:
            session.run(None, {name: prepare(image, SIZE)[np.newaxis]})  # (1, tags)

    single = count // 2 if quick else count
    rounds = 1 if quick else 3
    measured: dict[str, list[float]] = {"baseline": [], "batched": [], "alone": []}
    for _ in range(rounds):  # the sides take turns; each keeps its best round
        measured["baseline"].append(images_per_second(lambda: one_by_one(images), count))
        measured["batched"].append(images_per_second(lambda: batched_tagger.caption(images), count))
        measured["alone"].append(images_per_second(lambda: single_tagger.caption(images[:single]), single))
    baseline, batched, alone = (max(measured[side]) for side in ("baseline", "batched", "alone"))
    shape = "wd-vit-tagger-v3 shape: ViT-B/16 448 px, 10,861 tags, ONNX Runtime CPU"
    return [figure("tagger images/s, batch 8", batched, baseline, "images/s", True,
                   f"{shape}; baseline one image per session.run"),
            figure("tagger images/s, batch 1", alone, baseline, "images/s", True,
                   f"{shape}; the kind's own path against one image per session.run")]


if __name__ == "__main__":
    run_alone(run)
