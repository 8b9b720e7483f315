"""Protocols: the OpenAI-compatible routes (Chat Completions and Responses) against the native caption route,
4 clients each, on one real server. All end in the same caption service; each row shows what an OpenAI
translation (JSON body, base64 image, answer shape) costs on top. Ours: /v1/chat/completions and
/v1/responses; baseline: /api/v1/captions.
"""

from __future__ import annotations

import base64
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_serving import models_folder, pictures, start_server  # noqa: E402
from run import figure  # noqa: E402

CLIENTS = 4


def native(session, base: str, image: bytes) -> None:
    response = session.post(base + "/api/v1/captions", files={"image": ("s.png", image, "image/png")}, timeout=300)
    response.raise_for_status()


def chat(session, base: str, image: bytes) -> None:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    response = session.post(base + "/v1/chat/completions", timeout=300, json={
        "model": "shapes-demo", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]})
    response.raise_for_status()


def responses(session, base: str, image: bytes) -> None:
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    response = session.post(base + "/v1/responses", timeout=300, json={
        "model": "shapes-demo", "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": url, "detail": "low"}]}]})
    response.raise_for_status()


def throughput(call, base: str, images: list[bytes], count: int) -> float:
    import requests

    sessions = [requests.Session() for _ in range(CLIENTS)]

    def one(index: int) -> None:
        call(sessions[index % CLIENTS], base, images[index % len(images)])

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(CLIENTS)))  # warm every connection
        started = time.perf_counter()
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    for session in sessions:
        session.close()
    return count / elapsed


def run(quick: bool) -> list[dict]:
    """Rounds alternate between the routes on the same server; each keeps its median."""
    images = pictures(32)
    server = start_server(models_folder(), 8)
    rounds, count = (3, 64) if quick else (5, 200)
    calls = {"chat": chat, "responses": responses, "native": native}
    measured: dict[str, list[float]] = {name: [] for name in calls}
    try:
        for _ in range(rounds):
            for name, call in calls.items():
                measured[name].append(throughput(call, server.url, images, count))
    finally:
        server.stop()
    note = (f"one captioner serve (waitress, 16 threads, batch 8), shapes demo model, {CLIENTS} clients, "
            f"median of {rounds} alternating rounds; baseline: POST /api/v1/captions")
    baseline = statistics.median(measured["native"])
    return [figure(f"chat-completions vs native route, {CLIENTS} clients", statistics.median(measured["chat"]),
                   baseline, "requests/s", True, note),
            figure(f"responses vs native route, {CLIENTS} clients", statistics.median(measured["responses"]),
                   baseline, "requests/s", True, note)]
