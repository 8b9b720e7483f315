"""The pages (landing, caption, models, errors), the caption form without JavaScript, CSRF, security
headers, and the settings, against the real shapes demo model."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys

import pytest

from support import ROOT
from support.web import copy_bundle, shapes_image_bytes

@pytest.fixture(scope="module")
def models_root(demo_bundle, tmp_path_factory):
    from captioner.models.bundle import record_metrics

    demo = demo_bundle
    root = tmp_path_factory.mktemp("pages") / "models"
    shutil.copytree(demo, root / "shapes-demo")
    copy = copy_bundle(demo, root, "lstm-copy", dataset="flickr8k")
    record_metrics(copy, "test", {"BLEU-4": 0.1234})
    (root / "broken").mkdir()
    (root / "broken" / "captioner.json").write_text('{"kind": "lstm", "name": "broken"}')
    return root


@pytest.fixture(scope="module")
def app(make_app, models_root):
    app = make_app(models_root, max_upload_mb=1)
    yield app
    app.extensions["captioner"].close()


@pytest.fixture(scope="module")
def empty_app(make_app, tmp_path_factory):
    """An app with no model at all (offline, empty folder, demo building off)."""
    app = make_app(tmp_path_factory.mktemp("empty"))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    @app.get("/api/v1/boom")
    def api_boom():
        raise RuntimeError("secret internals")

    return app


def csrf_token(client) -> str:
    page = client.get("/caption").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def assert_no_inline_code(html: str):
    """The Content-Security-Policy forbids inline scripts and styles: the pages must not need them."""
    for script in re.findall(r"<script[^>]*>", html):
        assert "src=" in script, script
    assert not re.search(r"<script[^>]*>[^<]+</script>", html)
    assert " style=" not in html and "<style" not in html
    assert not re.search(r" on[a-z]+=", html)  # no inline event handlers


def test_landing_page(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Describe a photo in a sentence" in html
    assert 'aria-current="page"' in html and 'href="/caption"' in html and 'href="/models"' in html
    assert 'id="theme-toggle"' in html and 'aria-pressed' in html
    # The theme script loads in <head>, before the stylesheet, so there is no flash of the wrong theme.
    head = html.split("</head>")[0]
    assert head.index("js/theme.js") < head.index("css/main.css") and "defer" not in head.split("theme.js")[1][:10]
    assert "lstm-copy" in html and 'href="#main"' in html
    assert_no_inline_code(html)


def test_security_headers_on_pages(client):
    headers = client.get("/").headers
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


def test_caption_page_has_every_control_and_the_extension_hooks(client):
    html = client.get("/caption").get_data(as_text=True)
    assert re.search(r'<form id="caption-form"[^>]*method="post"[^>]*enctype="multipart/form-data"', html)
    assert 'name="csrf_token"' in html and 'name="csrf-token"' in html
    assert '<input type="file" id="image-input" name="image" accept="image/*,.heic,.heif,.avif"' in html
    assert '<label for="image-input"' in html and '<label for="model-select">' in html
    assert '<option value="lstm-copy" selected>' in html and '<option value="shapes-demo">' in html
    assert '<option value="*">Compare all models side by side</option>' in html
    assert 'name="method" value="greedy"' in html and 'name="method" value="beam"' in html
    assert 'id="beam-input" name="beam" min="1" max="8"' in html
    assert 'aria-live="polite"' in html and 'role="alert"' in html
    assert 'id="caption-extensions"' in html and 'id="result-template"' in html
    assert 'data-max-bytes="1048576"' in html
    assert 'type="reset"' in html
    assert_no_inline_code(html)
    script = client.get("/static/js/caption.js").get_data(as_text=True)
    for hook in ("captioner:captioned", "captioner:reset", "paste", "drop", "X-CSRFToken", "clipboard"):
        assert hook in script


def test_static_files_are_served(client):
    for path, kind in [("/static/css/main.css", "text/css"), ("/static/js/theme.js", "javascript"),
                       ("/static/images/logo.svg", "image/svg+xml")]:
        response = client.get(path)
        assert response.status_code == 200 and kind in response.content_type


def test_models_page_lists_data_set_size_metrics_and_failures(client):
    html = client.get("/models").get_data(as_text=True)
    assert "shapes-demo" in html and "lstm-copy" in html
    assert "flickr8k" in html and "shapes" in html
    assert "BLEU-4" in html and "0.123" in html
    assert re.search(r"\d+\.\d (KB|MB)", html)
    assert "Not loaded" in html and "broken" in html  # the damaged bundle is reported, the others still load
    assert "accuracy" in html  # the demo's validation figures from training


def test_caption_form_without_javascript(client, shapes_dataset):
    image = shapes_image_bytes(shapes_dataset, 2)
    response = client.post("/caption", data={
        "csrf_token": csrf_token(client), "image": (io.BytesIO(image), "shape.png"),
        "model": "shapes-demo", "method": "beam", "beam": "2"}, content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    caption = re.search(r'<p class="caption-text">([^<]+)</p>', html).group(1)
    assert any(word in caption for word in ("circle", "square", "triangle"))
    assert 'src="data:image/jpeg;base64,' in html  # the preview, with nothing stored on the server
    assert '<option value="shapes-demo" selected>' in html


def test_caption_form_compares_all_models(client, shapes_dataset):
    response = client.post("/caption", data={
        "csrf_token": csrf_token(client), "image": (io.BytesIO(shapes_image_bytes(shapes_dataset, 4)), "s.png"),
        "model": "*", "method": "greedy"}, content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert html.count('<article class="result"') == 3  # two results and the template
    assert 'class="results compare"' in html


def test_caption_form_needs_the_csrf_token(client, shapes_dataset):
    response = client.post("/caption", data={"image": (io.BytesIO(shapes_image_bytes(shapes_dataset)), "s.png")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "The form expired" in response.get_data(as_text=True)


def test_caption_form_explains_bad_uploads(client):
    token = csrf_token(client)
    response = client.post("/caption", data={"csrf_token": token, "image": (io.BytesIO(b"plain text"), "a.jpg")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert "is not a supported image" in response.get_data(as_text=True)
    big = client.post("/caption", data={"csrf_token": token, "image": (io.BytesIO(b"\0" * 1_200_000), "big.png")},
                      content_type="multipart/form-data")
    assert big.status_code == 413
    html = big.get_data(as_text=True)
    assert "That image is too large" in html and "1 MB limit" in html and "Traceback" not in html


def test_original_vit_endpoint_says_when_no_vit_gpt2_model_is_loaded(client, shapes_dataset):
    response = client.post("/VitGpt2ImageCaption", data={"image": (io.BytesIO(shapes_image_bytes(shapes_dataset)),
                                                                   "s.png")}, content_type="multipart/form-data")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "unknown_model" and "needs a vit-gpt2 model and none is loaded" in error["message"]


def test_offline_without_a_real_model_the_page_says_how_to_add_one(make_app, tmp_path, models_root):
    """Only the demo installed and the hub unreachable: the default pretrained models are tried, the reason shown."""
    shutil.copytree(models_root / "shapes-demo", tmp_path / "shapes-demo")
    app = make_app(tmp_path, try_pretrained=True)
    try:
        client = app.test_client()
        html = client.get("/caption").get_data(as_text=True)
        notice = re.search(r'<p class="notice"[^>]*>(.*?)</p>', html, re.S).group(1)  # one line, no more
        assert "Only the small shapes demo model is loaded" in notice and 'href="/models"' in notice
        assert "vit-gpt2" not in notice and str(tmp_path) not in notice and html.count('class="notice"') == 1
        models = client.get("/models").get_data(as_text=True)  # the whole story is on the models page
        assert "captioner models download vit-gpt2" in models and "Not loaded" in models
        assert "Only the small shapes demo model is loaded" in models and "captioner train lstm" in models
    finally:
        app.extensions["captioner"].close()


def test_404_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page not found" in html and 'href="/caption"' in html
    assert response.headers["Content-Security-Policy"]


def test_without_models_the_pages_say_what_to_do_and_the_api_is_not_ready(empty_app):
    client = empty_app.test_client()
    html = client.get("/caption").get_data(as_text=True)
    assert "No model could be loaded" in html and "disabled" in html
    assert client.get("/readyz").status_code == 503
    response = client.post("/api/v1/captions", data=b"x", content_type="image/png")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "not_ready"
    assert client.get("/healthz").status_code == 200


def test_500_page_and_json_hide_the_internals(empty_app):
    client = empty_app.test_client()
    page = client.get("/boom")
    assert page.status_code == 500
    assert "Something went wrong" in page.get_data(as_text=True)
    assert "secret internals" not in page.get_data(as_text=True)
    api = client.get("/api/v1/boom")
    assert api.status_code == 500 and api.get_json()["error"]["code"] == "internal"
    assert "secret internals" not in api.get_data(as_text=True)


def test_settings_from_environment_and_dotenv(tmp_path, caplog):
    from captioner.web.settings import WebSettings

    settings = WebSettings.from_env({"CAPTIONER_MODELS_DIR": "/srv/models", "MAX_UPLOAD_MB": "2.5",
                                     "CAPTIONER_BATCH_SIZE": "1", "CAPTIONER_BUILD_DEMO": "no",
                                     "SECRET_KEY": "k", "KEY": "translator-key", "DATABASE_URL": "sqlite://"})
    assert settings.models_dir == "/srv/models" and settings.max_upload_bytes == int(2.5 * 1024 * 1024)
    assert settings.batch_size == 1 and settings.build_demo is False and settings.translator_key == "translator-key"
    with caplog.at_level("WARNING"):
        generated = WebSettings.from_env({})
    assert len(generated.secret_key) == 64 and "SECRET_KEY is not set" in caplog.text
    with pytest.raises(ValueError, match="MAX_UPLOAD_MB must be a number"):
        WebSettings.from_env({"MAX_UPLOAD_MB": "lots"})
    with pytest.raises(ValueError, match="CAPTIONER_BATCH_SIZE must be at least 1"):
        WebSettings.from_env({"CAPTIONER_BATCH_SIZE": "0"})
    dotenv = tmp_path / ".env"
    dotenv.write_text("CAPTIONER_QUEUE_SIZE=7\nSECRET_KEY=from-file\n")
    code = ("from captioner.web.settings import WebSettings; s = WebSettings.from_env(dotenv_path=%r); "
            "print(s.queue_size, s.secret_key)" % str(dotenv))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "SECRET_KEY": "from-environment"})
    assert done.stdout.split() == ["7", "from-environment"], done.stderr  # the environment wins over .env


def test_flask_cli_finds_the_factory(tmp_path):
    """`make dev` runs `flask run` with FLASK_APP=captioner.web:create_app; the factory must work there."""
    env = {"PYTHONPATH": str(ROOT / "src"), "FLASK_APP": "captioner.web:create_app", "PATH": "/usr/bin:/bin",
           "CAPTIONER_MODELS_DIR": str(tmp_path), "CAPTIONER_BUILD_DEMO": "0", "CAPTIONER_TRY_PRETRAINED": "0",
           "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path / 'captioner.db'}"}
    done = subprocess.run([sys.executable, "-m", "flask", "routes"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for route in ("/api/v1/captions", "/healthz", "/readyz", "/flickr8k", "/VitGpt2ImageCaption", "/models"):
        assert route in done.stdout


def test_the_result_shows_a_taggers_tags_with_their_probabilities_and_the_rating_apart(tagging):
    from support.tagging import TAGGER, VLM, red_png

    client = tagging.app.test_client()
    page = client.get("/caption").get_data(as_text=True)
    for control in ('name="tags_from"', f'<option value="{TAGGER}">', 'name="template"', 'name="trigger"',
                    'name="language"', '<option value="de">German (de)</option>'):
        assert control in page, control
    response = client.post("/caption", data={
        "csrf_token": csrf_token(client), "image": (io.BytesIO(red_png()), "red.png"), "model": TAGGER,
        "template": "ohwx, {tags}", "language": "de"}, content_type="multipart/form-data")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<p class="caption-text">ohwx, [de] red theme, [de] ^_^, [de] long hair</p>' in html
    tags = re.findall(r'<span class="tag-name">([^<]+)</span> <span class="tag-probability">([^<]+)</span>', html)
    assert tags == [("[de] red theme", "1.00"), ("[de] ^_^", "0.50"), ("[de] long hair", "0.40")]
    assert re.search(r'Rating: <span class="rating-label">general</span> <span class="rating-probability">0.88</span>',
                     html)
    assert "Translated into de by azure" in html
    refused = client.post("/caption", data={
        "csrf_token": csrf_token(client), "image": (io.BytesIO(red_png()), "red.png"), "model": VLM,
        "tags_from": "nowhere"}, content_type="multipart/form-data")
    assert refused.status_code == 400 and "Tags_from names no loaded tagger" in refused.get_data(as_text=True)
