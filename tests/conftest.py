"""Fixtures every test may use, as in Flask's tutorial: ``app``, ``client`` and ``runner`` (the command
line in this process), plus the shapes data set and the shapes demo model, each built once per run.
Helpers that tests import live in the ``support`` package; nothing here runs at import time.
Nothing here touches the network: the test environment keeps the Hugging Face hub offline."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support import ROOT

# the real Flickr8k text and a phone photo, when present (CAPTIONER_SHARED_DATA points elsewhere)
SHARED_DATA = Path(os.environ.get("CAPTIONER_SHARED_DATA") or ROOT.parent / "shared" / "data")
# The test environment: the hub never reached; TensorFlow's info lines off.
# Transformers captioners compute in float32 whatever the CPU, so results repeat on every machine, and in
# PyTorch (the ONNX Runtime path is tested where asked for, in test_onnx_runtime.py).
TEST_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                    "CAPTIONER_PRECISION": "float32", "CAPTIONER_RUNTIME": "torch"}


def pytest_addoption(parser):
    parser.addoption("--screenshots", metavar="DIR", default=None,
                     help="write the browser tests' screenshots to DIR (make screenshots: docs/screenshots); "
                          "default: a temporary folder")


def pytest_configure(config):
    """Variables that must be set before the libraries are imported, where the caller has not set them
    (``make test`` sets them all); undone when the run ends."""
    config._environment_patch = patch = pytest.MonkeyPatch()
    for name, value in TEST_ENVIRONMENT.items():
        if name not in os.environ:
            patch.setenv(name, value)


def pytest_unconfigure(config):
    patch = getattr(config, "_environment_patch", None)
    if patch is not None:
        patch.undo()


@pytest.fixture(scope="session")
def history_database(tmp_path_factory) -> str:
    """A throw-away SQLite database for the caption history of the apps the tests make."""
    return f"sqlite:///{tmp_path_factory.mktemp('history')}/captioner.db"


@pytest.fixture(scope="session")
def make_app(history_database):
    """``make_app(models_dir, **settings)``: a testing app serving ``models_dir`` (no pretrained model, no
    demo built, the test history database); ``settings`` are WebSettings fields or Flask keys."""
    from support.web import make_app as make

    def make_app(models_dir: Path, **settings):
        return make(models_dir, **{"database_url": history_database, **settings})

    return make_app


@pytest.fixture(scope="session")
def demo_models_dir(tmp_path_factory, history_database) -> Path:
    """A models folder with the real shapes demo bundle, built once per run by the app itself: an app
    started on an empty folder, with nothing else to load, trains the demo model there. Read-only: copy
    the bundle (``support.web.copy_bundle``) to change it."""
    from captioner.web import create_app

    folder = tmp_path_factory.mktemp("demo-models") / "models"
    app = create_app({"models_dir": str(folder), "try_pretrained": False, "secret_key": "test",
                      "database_url": history_database})
    service = app.extensions["captioner"]
    assert service.state == "ready" and list(service.models) == ["shapes-demo"], service.readiness()
    assert any("demo" in note for note in service.notes)
    service.close()
    return folder


@pytest.fixture(scope="session")
def compat_server(demo_models_dir, tmp_path_factory):
    """A real `captioner serve` of the demo model with keys on, for the OpenAI/Ollama client tests and the
    guide's snippets (see support.compat_server)."""
    from support.compat_server import start_compat_server

    running = start_compat_server(demo_models_dir, tmp_path_factory.mktemp("compat-server"))
    yield running
    running.server.stop()


@pytest.fixture(scope="session")
def tagging(make_app, tmp_path_factory):
    """An app serving the tiny tagger and a vision-language model, with a translator, over real HTTP too (see
    support.tagging), for the tests of tags, templates and languages on the API, the compatible routes and pages."""
    from support.tagging import tagging_app

    with tagging_app(tmp_path_factory.mktemp("tagging"), make_app) as running:
        yield running


@pytest.fixture(scope="session")
def demo_bundle(demo_models_dir) -> Path:
    return demo_models_dir / "shapes-demo"


@pytest.fixture(scope="module")
def app(make_app, demo_models_dir):
    """The app serving the shapes demo model (modules that need other models override this fixture)."""
    app = make_app(demo_models_dir)
    yield app
    app.extensions["captioner"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner():
    """The command line in this process: ``runner(*args)`` returns the exit code and captured output."""
    from support.cli import run_main

    return run_main


@pytest.fixture
def cli():
    """The command line in a fresh process, for tests where a separate process is the point."""
    from support.cli import run_cli

    return run_cli


@pytest.fixture
def models_copy(demo_bundle, tmp_path) -> Path:
    """A models folder of this test's own, holding a copy of the demo bundle (free to change)."""
    folder = tmp_path / "models"
    shutil.copytree(demo_bundle, folder / demo_bundle.name)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A save_pretrained folder of a tiny random CLIP (``support.tiny_clip``), shared; read-only."""
    from support.tiny_clip import save_tiny_clip

    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip") / "clip")


@pytest.fixture
def clip_score_model(tiny_clip, monkeypatch) -> Path:
    """``--score clip`` and ``score=clip`` use the tiny CLIP in this test (CAPTIONER_SCORE_MODEL)."""
    monkeypatch.setenv("CAPTIONER_SCORE_MODEL", str(tiny_clip))
    return tiny_clip


@pytest.fixture(scope="session")
def flickr8k_text() -> Path:
    folder = SHARED_DATA / "flickr8k_text"
    if not (folder / "Flickr8k.token.txt").is_file():
        pytest.skip(f"the real Flickr8k text is not at {folder}")
    return folder


@pytest.fixture(scope="session")
def phone_photo() -> Path:
    path = SHARED_DATA / "photos" / "phone_photo_3264x2448.jpg"
    if not path.is_file():
        pytest.skip(f"the reference phone photo is not at {path}")
    return path


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    """A small shapes data set (CSV layout), shared by the whole session; treat it as read-only."""
    from captioner.data.shapes import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("shapes") / "shapes", images=60, seed=7)


@pytest.fixture(scope="session")
def prepared_shapes(shapes_dataset, tmp_path_factory) -> Path:
    """That data set prepared with the default settings (``captioner data prepare``), shared; read-only."""
    from captioner.data.prepare import prepare_dataset

    folder = tmp_path_factory.mktemp("prepared") / "shapes"
    prepare_dataset(shapes_dataset, folder)
    return folder
