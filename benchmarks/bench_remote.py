"""Remote models: a batch sent as concurrent requests (1, 4 and 16 in flight) against the straightforward
way, one request at a time (caption an image, wait for the answer, send the next).

The endpoint is a small local OpenAI-compatible server with a fixed service time per request (a sleep, as a
GPU server busy with one image looks to its client) that answers many requests at once, as vLLM and
Ollama (OLLAMA_NUM_PARALLEL) do. So the figures measure the client's side (JPEG encoding, HTTP, the shared
in-flight bound, the batch's threads) against the service time; a real server's throughput under
concurrency also depends on how well it batches on its GPU, which this machine cannot show.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import figure  # noqa: E402

SERVICE_S = 0.05  # seconds the endpoint takes per request
CONCURRENCY = (1, 4, 16)
MODEL = "fixed-time-vlm"


class FixedTimeEndpoint:
    """``POST /v1/chat/completions`` answered after SERVICE_S, any number at once."""

    def __init__(self, service_s: float = SERVICE_S):
        answer = json.dumps({"id": "bench", "object": "chat.completion", "model": MODEL, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "A photo of a field at dusk."},
             "finish_reason": "stop"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(service_s)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 64
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def photos(count: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)) for _ in range(count)]


def remote_captioner(models: Path, url: str, concurrency: int):
    from captioner.models.registry import load_captioner
    from captioner.models.remote.registration import add_remote
    from captioner.models.remote.settings import RemoteSettings

    name = f"bench-{concurrency}"
    add_remote(name, RemoteSettings(api="openai", urls=(url,), model=MODEL, concurrency=concurrency, logprobs=False),
               models, replace=True)
    return load_captioner(name, models)


def images_per_second(work, count: int) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def run(quick: bool) -> list[dict]:
    count = 32 if quick else 96
    images = photos(count)
    endpoint = FixedTimeEndpoint()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            one_by_one = remote_captioner(Path(folder), endpoint.url, 1)
            one_by_one.caption(images[:2])  # connections open, code paths warm
            baseline = images_per_second(lambda: [one_by_one.caption([image]) for image in images], count)
            for concurrency in CONCURRENCY:
                model = remote_captioner(Path(folder), endpoint.url, concurrency)
                model.caption(images[:2])
                ours = images_per_second(lambda: model.caption(images), count)
                rows.append(figure(f"remote kind, {concurrency} request{'s' if concurrency > 1 else ''} in flight",
                                   ours, baseline, "images/s", True,
                                   f"{count} 640x480 images as one batch, local endpoint with a fixed "
                                   f"{SERVICE_S * 1000:.0f} ms service time; baseline: one request at a time"))
    finally:
        endpoint.close()
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
