"""Serving: micro-batching, the bounded queue (503), the request timeout (504), and the real server
(`captioner serve`) under concurrent load. Every caption comes from the real shapes demo model."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from support.web import GatedCaptioner, shapes_image_bytes

SHAPE_WORDS = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def real_model(demo_bundle):
    from captioner.models.registry import load_captioner

    return load_captioner(demo_bundle)


@pytest.fixture(scope="module")
def images(shapes_dataset):
    from captioner.data.images import image_from_bytes

    return [image_from_bytes(shapes_image_bytes(shapes_dataset, i)) for i in range(8)]


def wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_waiting_requests_are_captioned_in_one_model_call(real_model, images):
    from captioner.web.batching import MicroBatcher

    gated = GatedCaptioner(real_model)
    batcher = MicroBatcher(gated, batch_size=8, wait_ms=2, queue_size=16)
    try:
        first = batcher.submit(images[0])
        wait_until(gated.entered.is_set)  # the model is busy with the first image
        rest = [batcher.submit(image) for image in images[1:6]]
        gated.gate.set()
        results = [batcher.wait(job, 30) for job in [first, *rest]]
        assert [r.batch_size for r in results] == [1, 5, 5, 5, 5, 5]
        assert gated.calls == 2
        alone = real_model.caption(images[:6])  # the same images, captioned directly
        assert [r.caption.text for r in results] == [c.text for c in alone]
        assert all(any(w in r.caption.text for w in SHAPE_WORDS) for r in results)
        stats = batcher.snapshot()
        assert stats["batches"] == 2 and stats["images"] == 6 and stats["largest_batch"] == 5
    finally:
        gated.gate.set()
        batcher.close()


def test_different_decodings_in_one_batch_get_their_own_model_calls(real_model, images):
    from captioner.models.base import Decoding
    from captioner.web.batching import MicroBatcher

    gated = GatedCaptioner(real_model)
    batcher = MicroBatcher(gated, batch_size=8, wait_ms=2, queue_size=16)
    try:
        first = batcher.submit(images[0])
        wait_until(gated.entered.is_set)
        beam = Decoding.beam(3)
        jobs = [batcher.submit(images[1]), batcher.submit(images[2], beam), batcher.submit(images[3], beam)]
        gated.gate.set()
        results = [batcher.wait(job, 30) for job in [first, *jobs]]
        assert [r.batch_size for r in results] == [1, 1, 2, 2]
        assert results[2].caption.alternatives  # beam search's n-best list
        assert gated.calls == 3
    finally:
        gated.gate.set()
        batcher.close()


def test_full_queue_refuses_at_once_and_recovers(real_model, images):
    from captioner.web.batching import MicroBatcher, Overloaded

    gated = GatedCaptioner(real_model)
    batcher = MicroBatcher(gated, batch_size=1, wait_ms=0, queue_size=2)
    try:
        running = batcher.submit(images[0])
        wait_until(gated.entered.is_set)
        queued = [batcher.submit(images[1]), batcher.submit(images[2])]
        started = time.perf_counter()
        with pytest.raises(Overloaded, match="busy"):
            batcher.submit(images[3])
        assert time.perf_counter() - started < 0.5  # refused at once, not after waiting
        gated.gate.set()
        assert all(batcher.wait(job, 30).caption.text for job in [running, *queued])
        assert batcher.caption(images[3], timeout=30).caption.text  # room again
        assert batcher.snapshot()["rejected"] == 1
    finally:
        gated.gate.set()
        batcher.close()


def test_timed_out_request_is_dropped_before_the_model_sees_it(real_model, images):
    from captioner.web.batching import MicroBatcher, RequestTimeout

    gated = GatedCaptioner(real_model)
    batcher = MicroBatcher(gated, batch_size=1, wait_ms=0, queue_size=4)
    try:
        running = batcher.submit(images[0])
        wait_until(gated.entered.is_set)
        waiting = batcher.submit(images[1])
        with pytest.raises(RequestTimeout, match="longer than 0.2 s"):
            batcher.wait(waiting, 0.2)
        gated.gate.set()
        assert batcher.wait(running, 30).caption.text
        assert batcher.caption(images[2], timeout=30).caption.text
        assert gated.calls == 2  # the abandoned request never reached the model
        assert batcher.snapshot()["timed_out"] == 1
    finally:
        gated.gate.set()
        batcher.close()


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on(real_model, images):
    from captioner.web.batching import MicroBatcher

    batcher = MicroBatcher(real_model, batch_size=4, wait_ms=0, queue_size=4)
    try:
        with pytest.raises(Exception):
            batcher.caption("not an image", timeout=30)  # the real model cannot embed a string
        assert batcher.caption(images[0], timeout=30).caption.text
        assert batcher.snapshot()["failed"] == 1
    finally:
        batcher.close()


def gated_app(make_app, tmp_path, real_model, **settings):
    app = make_app(tmp_path, **settings)
    gated = GatedCaptioner(real_model, name="gated")
    app.extensions["captioner"].add_model(gated)
    return app, gated


def post(app, data: bytes):
    return app.test_client().post("/api/v1/captions", data={"image": (io.BytesIO(data), "s.png")},
                                  content_type="multipart/form-data")


def test_api_answers_503_overloaded_when_the_queue_is_full(make_app, tmp_path, real_model, shapes_dataset):
    app, gated = gated_app(make_app, tmp_path, real_model, queue_size=1, batch_size=1, request_timeout_s=30)
    service = app.extensions["captioner"]
    image = shapes_image_bytes(shapes_dataset)
    with ThreadPoolExecutor(2) as pool:
        try:
            running = pool.submit(post, app, image)
            wait_until(gated.entered.is_set)
            queued = pool.submit(post, app, image)
            wait_until(lambda: service.models["gated"].batcher.queue_depth == 1)
            refused = post(app, image)
            assert refused.status_code == 503
            assert refused.get_json()["error"]["code"] == "overloaded"
            assert refused.headers["Retry-After"] == "1"
        finally:
            gated.gate.set()
        assert running.result().status_code == 200 and queued.result().status_code == 200
    assert app.test_client().get("/readyz").get_json()["models"]["gated"]["rejected"] == 1
    service.close()


def test_api_answers_504_timeout_when_the_model_is_too_slow(make_app, tmp_path, real_model, shapes_dataset):
    app, gated = gated_app(make_app, tmp_path, real_model, request_timeout_s=0.3)
    try:
        started = time.perf_counter()
        response = post(app, shapes_image_bytes(shapes_dataset))
        assert response.status_code == 504
        assert response.get_json()["error"]["code"] == "timeout"
        assert time.perf_counter() - started < 5
    finally:
        gated.gate.set()
    app.extensions["captioner"].close()


def test_serve_refuses_bad_settings_in_one_line(runner, tmp_path, monkeypatch):
    from support.cli import assert_clean_failure

    monkeypatch.chdir(tmp_path)  # no .env here
    result = runner("serve", "--port", "99999", "--models-dir", tmp_path)
    assert_clean_failure(result, "port must be between 0 and 65535")
    monkeypatch.setenv("MAX_UPLOAD_MB", "lots")
    result = runner("serve", "--models-dir", tmp_path)
    assert_clean_failure(result, "MAX_UPLOAD_MB must be a number")


def serve(models_dir: Path, workdir: Path, *args: str, env: dict | None = None):
    """``captioner serve`` in its own process, working in ``workdir`` (its history database is there)."""
    from captioner.web.launch import start_server

    env = {"CAPTIONER_TRY_PRETRAINED": "0", "SECRET_KEY": "test",
           "DATABASE_URL": f"sqlite:///{workdir / 'captioner.db'}", **(env or {})}
    return start_server(models_dir, *args, env=env, cwd=workdir, log_path=workdir / "server.log", timeout=180)


@pytest.mark.slow
def test_real_server_micro_batches_concurrent_clients(demo_models_dir, shapes_dataset, tmp_path):
    import requests

    server = serve(demo_models_dir, tmp_path, "--threads", "16", env={"CAPTIONER_BATCH_WAIT_MS": "10"})
    base = server.url
    try:
        ready = server.readyz()
        assert ready["status"] == "ready" and "shapes-demo" in ready["models"]
        assert requests.get(base + "/healthz", timeout=5).json() == {"status": "ok"}
        page = requests.get(base + "/caption", timeout=5)
        assert page.status_code == 200 and page.headers["Server"] == "captioner"  # waitress, not werkzeug
        images = [shapes_image_bytes(shapes_dataset, i % 12, "JPEG") for i in range(32)]

        def caption(data: bytes):
            with requests.Session() as session:
                return session.post(base + "/api/v1/captions", files={"image": ("s.jpg", data, "image/jpeg")},
                                    timeout=120)

        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(caption, images))
        assert [r.status_code for r in responses] == [200] * 32, [r.text for r in responses if r.status_code != 200]
        assert all(any(w in r.json()["caption"] for w in SHAPE_WORDS) for r in responses)
        counters = requests.get(base + "/readyz", timeout=5).json()["models"]["shapes-demo"]
        assert counters["images"] == 32
        assert counters["largest_batch"] > 1 and counters["batches"] < 32  # requests really shared model calls
        assert max(r.json()["timings"]["batch_size"] for r in responses) > 1
    finally:
        server.stop()
    output = server.log_tail(100_000)
    assert "Traceback" not in output
    assert "development server" not in output.lower()


@pytest.mark.slow
def test_gunicorn_workers_each_load_the_model_after_fork(demo_models_dir, shapes_dataset, tmp_path):
    import requests

    server = serve(demo_models_dir, tmp_path, "--workers", "2", "--threads", "2")
    base = server.url
    try:
        image = shapes_image_bytes(shapes_dataset, 5)
        deadline = time.monotonic() + 120
        answers = []
        while len(answers) < 6 and time.monotonic() < deadline:
            response = requests.post(base + "/api/v1/captions", files={"image": ("s.png", image, "image/png")},
                                     timeout=60)
            if response.status_code == 503:  # the other worker is still loading
                time.sleep(0.5)
                continue
            assert response.status_code == 200, response.text
            answers.append(response.json()["caption"])
        assert len(answers) == 6 and len(set(answers)) == 1  # every worker's model agrees
    finally:
        server.stop()
    output = server.log_tail(100_000)
    assert "gunicorn" in output.lower() and "Traceback" not in output


def test_readyz_says_loading_until_the_model_is_warmed_up_at_both_batch_shapes(make_app, demo_models_dir, monkeypatch):
    """Warm-up captions one image and a full micro-batch before the model is served; until then: loading."""
    from captioner.web import service as service_module

    seen, real_caption_calls, apps = [], [], []
    original = service_module.warm_up

    def watched_warm_up(captioner, batch_size=1):
        caption = captioner.caption

        def counting(images, decoding=None):
            real_caption_calls.append(len(images))
            wait_until(lambda: apps)  # the app object exists once create_app has returned
            seen.append(apps[0].extensions["captioner"].readiness()["status"])
            return caption(images, decoding)

        captioner.caption = counting
        try:
            original(captioner, batch_size)
        finally:
            del captioner.caption

    monkeypatch.setattr(service_module, "warm_up", watched_warm_up)
    app = make_app(demo_models_dir, batch_size=4, load_in_background=True)
    apps.append(app)
    try:
        wait_until(lambda: app.extensions["captioner"].state != "loading", timeout=120)
        assert real_caption_calls == [1, 4]
        assert seen == ["loading", "loading"]
        assert app.test_client().get("/readyz").get_json()["status"] == "ready"
    finally:
        app.extensions["captioner"].close()


@pytest.mark.slow
def test_offline_with_no_models_the_server_is_ready_within_a_minute_and_says_once_what_to_do(tmp_path):
    """No network (the hub's name does not resolve), no models, an empty hub cache: the pretrained model is
    given up at once with one warning, and the demo model is trained and served within the bound."""
    from captioner.web.launch import start_server

    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": "https://hub.invalid",
           "HF_HOME": str(tmp_path / "hf"), "SECRET_KEY": "test"}
    log = tmp_path / "serve.log"
    with start_server(tmp_path / "models", env=env, cwd=tmp_path, log_path=log, timeout=60) as server:  # raises when later
        ready = server.readyz()
    assert ready["status"] == "ready" and list(ready["models"]) == ["shapes-demo"]
    lines = log.read_text().splitlines()
    warnings = [line for line in lines if "vit-gpt2" in line.lower() and "WARNING" in line]
    assert len(warnings) == 1 and "captioner models download vit-gpt2" in warnings[0], lines
    assert not [line for line in lines if "retry" in line.lower() or "hub.invalid" in line], lines
