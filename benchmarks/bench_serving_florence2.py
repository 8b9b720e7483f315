"""Serving the default model's architecture (Florence-2-base): latency of the caption page's request (the page
posts the photo to /api/v1/captions) on the real server at 1 and 4 concurrent clients, micro-batching (ours,
batch size 8) against one image per model call (batch size 1).

Both servers serve the same full-size Florence-2-base bundle with random weights (written once into
.cache/bench-models-florence2), in the precision each chooses on this machine, through the cached decoder
step, with the same threads (``BENCH_THREADS`` when set). The servers take turns, round by round.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import load, pictures  # noqa: E402
from bench_serving_vit_gpt2 import start_server  # noqa: E402
from run import ROOT, figure, run_alone  # noqa: E402

CLIENTS = (1, 4)


def models_folder() -> Path:
    folder = ROOT / ".cache" / "bench-models-florence2"
    if not (folder / "florence-2-random" / "captioner.json").is_file():
        import torch
        from bench_image_to_text import florence_2_base

        from captioner.models.bundle import BundleInfo
        from captioner.models.transformers.image_to_text import ModelParts, write_bundle

        torch.manual_seed(0)
        model, processor = florence_2_base()
        write_bundle(folder / "florence-2-random", ModelParts(model, processor.image_processor, processor.tokenizer,
                                                              processor),
                     BundleInfo(kind="image-to-text", name="florence-2-random", dataset="random", backbone="davit"))
    return folder


def run(quick: bool) -> list[dict]:
    models = models_folder()
    images = pictures(8)
    servers = {"batched": start_server(models, 8), "single": start_server(models, 1)}
    rounds = 1 if quick else 2
    measured = {name: {clients: [] for clients in CLIENTS} for name in servers}
    try:
        for clients in CLIENTS:
            for _ in range(rounds):
                for name, server in servers.items():
                    measured[name][clients].append(load(server.url, images, clients, clients * (2 if quick else 4)))
    finally:
        for server in servers.values():
            server.stop()
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = os.environ.get("BENCH_THREADS") or "default"
    note = (f"captioner serve, full-size Florence-2-base with random weights (cached step), beam 3, threads {threads}, "
            f"median of {rounds} rounds, load average {load_average:.1f}; baseline: the same server with batch size 1")
    rows = []
    for clients in CLIENTS:
        ours = statistics.median(run["p50"] for run in measured["batched"][clients])
        base = statistics.median(run["p50"] for run in measured["single"][clients])
        rows.append(figure(f"florence-2 caption page p50 latency, {clients} clients", ours, base, "ms", False, note))
    return rows


if __name__ == "__main__":
    run_alone(run)
