"""Serving: throughput and latency of the real server (`captioner serve` on 127.0.0.1) at 1, 4 and 16
concurrent clients, with micro-batching (ours) against one image per model call (batch size 1).

Both servers serve the shapes demo model (built once into .cache/bench-models) with the same threads;
each client posts real shapes pictures to /api/v1/captions and waits for the answer.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import ROOT, figure  # noqa: E402

CONCURRENCY = (1, 4, 16)


def models_folder() -> Path:
    folder = ROOT / ".cache" / "bench-models"
    if not (folder / "shapes-demo" / "captioner.json").is_file():
        from captioner.training.demo import build_demo_model

        build_demo_model(folder)
    return folder


def pictures(count: int) -> list[bytes]:
    """``count`` shapes pictures as PNG bytes."""
    import tempfile

    from captioner.data.shapes import write_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_shapes_dataset(Path(tmp) / "shapes", images=count, seed=3)
        return [path.read_bytes() for path in sorted((folder / "Images").iterdir())[:count]]


def start_server(models: Path, batch_size: int):
    from captioner.web.launch import start_server as start

    return start(models, "--threads", "16", env={
        "CAPTIONER_BATCH_SIZE": str(batch_size), "CAPTIONER_BATCH_WAIT_MS": "5", "CAPTIONER_TRY_PRETRAINED": "0",
        "SECRET_KEY": "bench", "CAPTIONER_QUEUE_SIZE": "256", "CAPTIONER_RATE_LIMIT": "off"})


def load(base: str, images: list[bytes], clients: int, requests_count: int) -> dict:
    """Send ``requests_count`` captions from ``clients`` concurrent clients; throughput and latencies."""
    import requests

    sessions = [requests.Session() for _ in range(clients)]

    def one(index: int) -> float:
        session = sessions[index % clients]
        started = time.perf_counter()
        response = session.post(base + "/api/v1/captions", timeout=300,
                                files={"image": ("s.png", images[index % len(images)], "image/png")})
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(clients) as pool:  # warm up every client's connection
        list(pool.map(one, range(clients)))
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(one, range(requests_count)))
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    p99_index = min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))
    return {"throughput": requests_count / elapsed, "p50": statistics.median(latencies), "p99": latencies[p99_index]}


def run(quick: bool) -> list[dict]:
    """Both servers run side by side; each load level alternates between them for a few rounds and keeps
    each server's median, so a busy moment on a shared machine does not favour either."""
    models = models_folder()
    images = pictures(32)
    servers = {"batched": start_server(models, 8), "single": start_server(models, 1)}
    rounds = 2 if quick else 3
    try:
        measured = {name: {c: [] for c in CONCURRENCY} for name in servers}
        for clients in CONCURRENCY:
            count = max(32, clients * (3 if quick else 8))
            for _ in range(rounds):
                for name, server in servers.items():
                    measured[name][clients].append(load(server.url, images, clients, count))
    finally:
        for server in servers.values():
            server.stop()
    rows = []
    note = f"captioner serve (waitress, 16 threads), shapes demo model, median of {rounds} rounds; baseline: batch size 1"
    for clients in CONCURRENCY:
        ours = median_of(measured["batched"][clients])
        base = median_of(measured["single"][clients])
        rows.append(figure(f"serving throughput, {clients} clients", ours["throughput"], base["throughput"],
                           "requests/s", True, note))
        rows.append(figure(f"serving p50 latency, {clients} clients", ours["p50"], base["p50"], "ms", False, note))
        rows.append(figure(f"serving p99 latency, {clients} clients", ours["p99"], base["p99"], "ms", False, note))
    return rows


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}
