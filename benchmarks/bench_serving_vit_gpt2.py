"""Serving ViT-GPT2: throughput of the real server (`captioner serve` on 127.0.0.1) at 4 concurrent clients,
micro-batching (ours, batch size 8) against one image per model call (batch size 1).

Both servers serve the same full-size ViT-GPT2 bundle with random weights (written once into
.cache/bench-models-vit-gpt2), in the precision each chooses on this machine, with the same threads
(``BENCH_THREADS`` when set); each client posts shapes pictures to /api/v1/captions and waits for the answer.
The servers take turns, round by round.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import load, pictures  # noqa: E402
from run import ROOT, figure, run_alone  # noqa: E402

CLIENTS = 4


def models_folder() -> Path:
    folder = ROOT / ".cache" / "bench-models-vit-gpt2"
    if not (folder / "vit-gpt2-random" / "captioner.json").is_file():
        from bench_vit_gpt2 import full_size_parts

        from captioner.models.bundle import BundleInfo
        from captioner.models.transformers.vit_gpt2 import ModelParts, write_bundle

        write_bundle(folder / "vit-gpt2-random", ModelParts(*full_size_parts()),
                     BundleInfo(kind="vit-gpt2", name="vit-gpt2-random", dataset="random", backbone="vit-base"))
    return folder


def start_server(models: Path, batch_size: int):
    from captioner.web.launch import start_server as start

    env = {"CAPTIONER_BATCH_SIZE": str(batch_size), "CAPTIONER_BATCH_WAIT_MS": "20", "CAPTIONER_TRY_PRETRAINED": "0",
           "CAPTIONER_BUILD_DEMO": "0", "SECRET_KEY": "bench", "CAPTIONER_QUEUE_SIZE": "64",
           "CAPTIONER_REQUEST_TIMEOUT_S": "600", "CAPTIONER_RATE_LIMIT": "off"}
    if os.environ.get("BENCH_THREADS"):
        env["OMP_NUM_THREADS"] = os.environ["BENCH_THREADS"]
    return start(models, "--threads", "8", env=env, timeout=600)


def run(quick: bool) -> list[dict]:
    models = models_folder()
    images = pictures(16)
    servers = {"batched": start_server(models, 8), "single": start_server(models, 1)}
    rounds = 1 if quick else 2
    measured: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        for _ in range(rounds):
            for name, server in servers.items():
                measured[name].append(load(server.url, images, CLIENTS, CLIENTS * (2 if quick else 4)))
    finally:
        for server in servers.values():
            server.stop()
    ours = statistics.median(run["throughput"] for run in measured["batched"])
    base = statistics.median(run["throughput"] for run in measured["single"])
    threads = os.environ.get("BENCH_THREADS") or "default"
    note = (f"captioner serve, full-size ViT-GPT2 with random weights, beam 4, {CLIENTS} clients, threads {threads}, "
            f"median of {rounds} rounds; baseline: the same server with batch size 1")
    return [figure(f"vit-gpt2 serving throughput, {CLIENTS} clients", ours, base, "requests/s", True, note)]


if __name__ == "__main__":
    run_alone(run)
