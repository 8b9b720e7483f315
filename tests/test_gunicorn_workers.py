"""`captioner serve --workers 2` (gunicorn) as a whole: /readyz says ready only when every worker has its
models, after which no request gets not_ready; a worker killed under load fails only its in-flight
requests, cleanly, while new ones succeed, and no worker loads its models twice. One real server."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import Counter

import pytest

from captioner.web.launch import start_server
from support.web import shapes_image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_models_dir):
    folder = tmp_path_factory.mktemp("gunicorn")
    server = start_server(demo_models_dir, "--workers", "2", "--threads", "4",
                          env={"CAPTIONER_TRY_PRETRAINED": "0", "SECRET_KEY": "workers-test",
                               "CAPTIONER_RATE_LIMIT": "off",
                               "DATABASE_URL": f"sqlite:///{folder / 'captioner.db'}"},
                          timeout=300, log_path=folder / "server.log")
    yield server
    server.stop()


def worker_pids(server) -> set[int]:
    import psutil

    return {child.pid for child in psutil.Process(server.process.pid).children()}


def readiness(server) -> dict:
    """/readyz's answer, 200 or 503."""
    import requests

    return requests.get(server.url + "/readyz", timeout=30).json()


def models_loaded_per_process(server) -> Counter:
    return Counter(int(pid) for pid in re.findall(r"\[(\d+)\] captioner\.web\.service: models ready",
                                                  server.log_tail(10_000_000)))


def test_ready_only_when_every_worker_is_then_no_request_gets_not_ready(server, shapes_dataset):
    import requests

    ready = server.readyz()  # start_server returned on the first "ready"
    assert ready["status"] == "ready" and ready["workers"] == {"expected": 2, "ready": 2}
    image = shapes_image_bytes(shapes_dataset, 4, "JPEG")

    def caption(_):
        with requests.Session() as session:  # a new connection each time: any worker may take it
            return session.post(server.url + "/api/v1/captions", timeout=60,
                                files={"image": ("s.jpg", image, "image/jpeg")}).status_code

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(caption, range(48))) == [200] * 48
    assert set(models_loaded_per_process(server)) == worker_pids(server)  # both workers have served


def test_a_worker_killed_under_load(server, shapes_dataset):
    import requests

    image = shapes_image_bytes(shapes_dataset, 6, "JPEG")
    outcomes: list[tuple[float, str]] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                with requests.Session() as session:
                    status = session.post(server.url + "/api/v1/captions", timeout=60,
                                          files={"image": ("s.jpg", image, "image/jpeg")}).status_code
                outcomes.append((time.monotonic(), str(status)))
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # the killed worker's in-flight requests: the connection breaks, never a half answer as whole
                outcomes.append((time.monotonic(), "connection broken"))

    before = worker_pids(server)
    threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    victim = min(before)
    killed_at = time.monotonic()
    import os

    os.kill(victim, signal.SIGKILL)
    deadline, seen = time.monotonic() + 180, []
    while time.monotonic() < deadline:  # gunicorn starts a new worker; it loads, then says ready
        pids, ready = worker_pids(server), readiness(server)
        seen.append((ready["status"], ready["workers"]["ready"]))
        if victim not in pids and len(pids) == 2 and ready["workers"]["ready"] == 2:
            break
        time.sleep(0.5)
    replaced_at = time.monotonic()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(timeout=70)

    after = worker_pids(server)
    assert victim not in after and len(after) == 2 and server.readyz()["status"] == "ready"
    # while the new worker loaded, /readyz said so instead of "ready"
    assert all(status == "ready" if count == 2 else status == "loading" for status, count in seen), seen
    statuses = Counter(outcome for _, outcome in outcomes)
    assert not [s for s in statuses if s.isdigit() and s != "200"], statuses  # no 5xx, no not_ready
    assert set(statuses) <= {"200", "connection broken"}, statuses
    assert sum(1 for at, s in outcomes if killed_at < at < replaced_at and s == "200") > 0  # served meanwhile
    assert sum(1 for at, s in outcomes if at > replaced_at and s == "200") > 0
    loads = models_loaded_per_process(server)
    assert set(loads) == before | after and set(loads.values()) == {1}, loads  # each worker loaded once
    log = server.log_tail(10_000_000)
    assert f"Worker (pid:{victim}) was sent SIGKILL" in log
