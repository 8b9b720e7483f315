"""The JSON API, the health checks and the original's endpoints, against the real shapes demo model."""

from __future__ import annotations

import io
import os
import shutil

import pytest
from PIL import Image

from support.web import copy_bundle, shapes_image_bytes, tiny_vit_bundle

SHAPE_WORDS = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def models_root(demo_bundle, tmp_path_factory):
    """The demo bundle, a copy of it that says it was trained on Flickr8k and has metrics, and a tiny
    ViT-GPT2 with random weights."""
    from captioner.models.bundle import record_metrics

    demo = demo_bundle
    root = tmp_path_factory.mktemp("api") / "models"
    shutil.copytree(demo, root / "shapes-demo")
    copy = copy_bundle(demo, root, "lstm-flickr8k", dataset="flickr8k")
    record_metrics(copy, "test", {"BLEU-4": 0.1234, "CIDEr": 0.5})
    tiny_vit_bundle(root)
    return root


@pytest.fixture(scope="module")
def app(make_app, models_root):
    app = make_app(models_root, max_upload_mb=1)
    yield app
    app.extensions["captioner"].close()


@pytest.fixture(scope="module")
def png(shapes_dataset) -> bytes:
    return shapes_image_bytes(shapes_dataset, 0)


def post_image(client, data: bytes, filename: str = "shape.png", path: str = "/api/v1/captions", field="image",
               **params):
    return client.post(path, data={field: (io.BytesIO(data), filename), **params},
                       content_type="multipart/form-data")


def assert_error(response, status: int, code: str, *fragments: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code, error
    for fragment in fragments:
        assert fragment.lower() in error["message"].lower(), error["message"]
    assert "Traceback" not in error["message"]


def test_caption_from_multipart_upload_with_the_real_model(client, png):
    response = post_image(client, png)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == "lstm-flickr8k"  # the default: a model trained on a real data set comes first
    assert body["kind"] == "lstm"
    assert any(word in body["caption"] for word in SHAPE_WORDS), body["caption"]
    assert set(body["timings"]) == {"queue_ms", "model_ms", "total_ms", "batch_size"}
    assert body["timings"]["total_ms"] >= body["timings"]["model_ms"] > 0
    assert body["image"] == {"filename": "shape.png", "width": 96, "height": 96, "bytes": len(png)}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers  # the API keeps no session


def test_caption_from_raw_body_with_a_named_model(client, png):
    response = client.post("/api/v1/captions?model=shapes-demo", data=png, content_type="image/png")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == "shapes-demo"
    assert body["image"]["filename"] == "upload"


def test_same_image_same_caption_from_both_copies(client, png):
    """Both bundles hold the same weights: greedy captions must agree (the model really ran)."""
    first = post_image(client, png, model="shapes-demo").get_json()
    second = post_image(client, png, model="lstm-flickr8k").get_json()
    assert first["caption"] == second["caption"]


def test_beam_search_returns_alternatives_and_respects_max_length(client, shapes_dataset):
    image = shapes_image_bytes(shapes_dataset, 3, "JPEG")
    body = post_image(client, image, "three.jpg", method="beam", beam="3").get_json()
    assert body["decoding"]["method"] == "beam" and body["decoding"]["beam_size"] == 3
    assert 1 <= len(body["alternatives"]) <= 3
    assert all(alt["text"] and alt["log_prob"] <= 0 for alt in body["alternatives"])
    short = post_image(client, image, "three.jpg", max_length="2").get_json()
    assert 1 <= len(short["caption"].split()) <= 2


def test_beam_width_alone_means_beam_search(client, png):
    body = client.post("/api/v1/captions?beam=2", data=png, content_type="image/png").get_json()
    assert body["decoding"]["method"] == "beam" and body["decoding"]["beam_size"] == 2


def test_compare_all_captions_with_every_model(client, png):
    response = post_image(client, png, compare="all")
    assert response.status_code == 200
    body = response.get_json()
    assert [r["model"] for r in body["results"]] == ["lstm-flickr8k", "shapes-demo", "vit-tiny"]
    assert [r["kind"] for r in body["results"]] == ["lstm", "lstm", "image-to-text"]
    for result in body["results"]:
        assert result["caption"] and result["timings"]["model_ms"] > 0
    assert body["results"][2]["decoding"]["method"] == "beam"  # each model keeps its own default decoding
    assert body["timings"]["total_ms"] > 0


def test_models_endpoint_lists_data_set_size_and_metrics(client):
    body = client.get("/api/v1/models").get_json()
    assert body["status"] == "ready" and body["default_model"] == "lstm-flickr8k"
    models = {m["name"]: m for m in body["models"]}
    assert set(models) == {"lstm-flickr8k", "shapes-demo", "vit-tiny"}
    assert models["lstm-flickr8k"]["dataset"] == "flickr8k"
    assert models["lstm-flickr8k"]["metrics"]["test"] == {"BLEU-4": 0.1234, "CIDEr": 0.5}
    assert models["shapes-demo"]["demo"] is True and models["shapes-demo"]["source"] == "demo"
    assert models["shapes-demo"]["size_bytes"] > 10_000


def noise_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def pixel_bomb() -> bytes:
    """A small file that claims 100 million pixels (more than the 40 million allowed)."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_oversized_upload_is_refused_with_413(client):
    data = noise_png(800)  # about 1.9 MB of real PNG, over the app's 1 MB limit
    assert len(data) > 1024 * 1024
    assert_error(post_image(client, data), 413, "image_too_large", "1 MB")
    assert_error(client.post("/api/v1/captions", data=data, content_type="image/png"), 413, "image_too_large")


@pytest.mark.parametrize("case", ["text", "disguised", "corrupt", "bomb", "svg"])
def test_bad_images_are_refused_by_content(client, png, shapes_dataset, case):
    jpeg = shapes_image_bytes(shapes_dataset, 1, "JPEG")
    data, name, fragment = {
        "text": (b"just some text, not a picture\n" * 20, "notes.txt", "not a supported image"),
        "disguised": (b"MZ\x90\x00" + b"\x00" * 200, "holiday.jpg", "not a supported image"),
        "corrupt": (jpeg[: len(jpeg) // 2], "half.jpg", "truncated"),
        "bomb": (pixel_bomb(), "bomb.png", "pixels"),
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg",
                "not a supported image"),
    }[case]
    response = post_image(client, data, name)
    assert_error(response, 400, "bad_image", fragment)


def test_missing_or_empty_image_is_refused(client, png):
    assert_error(post_image(client, b"", "empty.png"), 400, "no_image", "empty")
    assert_error(post_image(client, png, field="photo"), 400, "no_image", "'image'", "'photo'")
    assert_error(client.post("/api/v1/captions", data={"model": "shapes-demo"}), 400, "no_image")
    assert_error(client.post("/api/v1/captions", data="hello", content_type="text/plain"), 400, "no_image")
    assert_error(client.post("/api/v1/captions", data=b"", content_type="image/png"), 400, "no_image", "empty")


@pytest.mark.parametrize("params, fragment", [
    ({"beam": "0"}, "between 1 and 8"),
    ({"beam": "99"}, "between 1 and 8"),
    ({"beam": "wide"}, "whole number"),
    ({"method": "sampling"}, "greedy, beam, sample"),
    ({"method": "greedy", "beam": "3"}, "contradict"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"temperature": "-1"}, "temperature must be from 0"),
    ({"temperature": "nan"}, "temperature must be from 0"),
    ({"top_p": "0"}, "top_p must be above 0"),
    ({"top_p": "1.5"}, "top_p must be above 0"),
    ({"seed": "lucky"}, "seed must be a whole number"),
    ({"method": "sample", "temperature": "0"}, "temperature 0"),
    ({"method": "beam", "seed": "4"}, "contradict"),
    ({"beam": "3", "temperature": "0.7"}, "contradict"),
    ({"max_length": "0"}, "between 1 and 50"),
    ({"compare": "some"}, "compare"),
])
def test_bad_parameters_are_refused(client, png, params, fragment):
    assert_error(post_image(client, png, **params), 400, "bad_parameter", fragment)


def test_sampling_is_asked_for_by_method_or_temperature_and_repeats_with_a_seed(client, png):
    def caption(**params):
        response = post_image(client, png, model="vit-tiny", max_length="6", **params)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    seeded = caption(method="sample", seed="21", top_p="0.95")
    assert seeded["decoding"]["method"] == "sample"
    assert (seeded["decoding"]["seed"], seeded["decoding"]["top_p"], seeded["decoding"]["temperature"]) == (21, 0.95, 1)
    assert caption(method="sample", seed="21", top_p="0.95")["caption"] == seeded["caption"]
    assert caption(temperature="1.0", seed="21", top_p="0.95")["caption"] == seeded["caption"]  # the same request
    others = {caption(temperature="1.5", seed=str(seed))["caption"] for seed in range(4)}
    assert len(others) > 1  # a random model's words are spread: seeds draw different captions
    deterministic = caption(temperature="0", seed="21")  # the model's own decoding; the seed is ignored
    assert deterministic["decoding"]["method"] == "beam" and deterministic["caption"] == caption()["caption"]


def test_unknown_model_is_404_and_names_the_loaded_ones(client, png):
    assert_error(post_image(client, png, model="nope"), 404, "unknown_model", "nope", "shapes-demo")


def test_unknown_endpoint_and_wrong_method_are_json(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found", "/api/v1/nothing-here", "/api/v1/captions")
    assert_error(client.get("/api/v1/captions"), 405, "method_not_allowed", "GET")


def test_original_endpoints_answer_like_the_original(client, png):
    response = post_image(client, png, "../../etc/passwd.png", path="/flickr8k")
    assert response.status_code == 200
    body = response.get_json()
    assert body["image"] == "etc_passwd.png"  # cleaned; never used as a path
    assert any(word in body["description"] for word in SHAPE_WORDS)
    assert body["model"] == "lstm-flickr8k"
    legacy = post_image(client, png, path="/flickr30k", field="files").get_json()  # the old page's field
    assert legacy["model"] == "lstm-flickr8k" and legacy["description"] == body["description"]


def test_original_vit_endpoint_uses_a_vit_gpt2_model(client, png):
    body = post_image(client, png, path="/VitGpt2ImageCaption").get_json()
    assert body["model"] == "vit-tiny" and body["image"] == "shape.png" and body["description"]
    assert_error(post_image(client, b"", path="/flickr8k"), 400, "no_image")


def test_health_and_readiness_with_batching_counters(client, png):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    post_image(client, png, model="shapes-demo")
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    counters = body["models"]["shapes-demo"]
    assert counters["batches"] >= 1 and counters["images"] >= 1 and counters["largest_batch"] >= 1
    assert counters["queue_depth"] == 0 and counters["batch_size"] == 8


def test_cors_only_on_the_api(client):
    preflight = client.options("/api/v1/captions", headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST"})
    assert preflight.headers.get("Access-Control-Allow-Origin") == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    page = client.get("/", headers={"Origin": "https://example.org"})
    assert "Access-Control-Allow-Origin" not in page.headers


def test_security_headers_on_api_responses(client):
    headers = client.get("/api/v1/models").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_uploads_stay_in_memory(app):
    """Multipart files never spill to temporary files on disk (werkzeug's default above 500 KB)."""
    from captioner.web.uploads import InMemoryRequest

    assert app.request_class is InMemoryRequest
    with app.test_request_context("/api/v1/captions", method="POST"):
        from flask import request

        stream = request._get_file_stream(5_000_000, "image/png", "big.png")
        assert isinstance(stream, io.BytesIO)
