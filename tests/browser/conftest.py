"""The real app in a real browser: ``captioner serve`` (waitress) in a subprocess on 127.0.0.1 with two
real small models, the local fake Azure Translator, and Debian's Chromium driven by Playwright.
Playwright never downloads a browser here (it is given Debian's); without /usr/bin/chromium these tests
skip. Screenshots go to a temporary folder, or to ``--screenshots DIR`` (``make screenshots``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.fake_azure_translator import KEY, REGION, FakeAzureTranslator

MODEL_NAMES = ("shapes-attention", "shapes-demo")  # the attention demo, and the session's demo model (LSTM)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
START_TIMEOUT = 180  # seconds for the server to load its models


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)  # the session trains two small models first


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian's Chromium is not at {CHROMIUM}; install it with `apt-get install chromium` "
                    "(or `make system-packages` as root)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright (the Python package) is not installed")
    return CHROMIUM


@pytest.fixture(scope="session")
def two_models(demo_bundle, tmp_path_factory) -> Path:
    """A models folder with two real small models trained on the shapes data set: the attention demo and
    the session's demo model (LSTM), so "compare all" shows two kinds and the attention view has maps."""
    from captioner.training.demo import build_attention_demo

    folder = tmp_path_factory.mktemp("browser-models")
    shutil.copytree(demo_bundle, folder / MODEL_NAMES[1])
    build_attention_demo(folder, name=MODEL_NAMES[0], seed=0)
    return folder


@pytest.fixture(scope="session")
def fake_translator():
    with FakeAzureTranslator() as fake:
        yield fake


@pytest.fixture(scope="session")
def reports_folder(tmp_path_factory) -> Path:
    """The server's reports folder (CAPTIONER_REPORTS_DIR): empty until a test writes a compare report there."""
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def training_sets(tmp_path_factory) -> Path:
    """The server's training sets folder (CAPTIONER_DATASETS_DIR): empty until a test puts a set there."""
    return tmp_path_factory.mktemp("training-sets")


@pytest.fixture(scope="session")
def server(chromium_path, two_models, fake_translator, reports_folder, tiny_clip, training_sets,
           tmp_path_factory) -> str:
    """The base URL of ``captioner serve`` running the two models (the tiny CLIP behind score=clip); stopped
    after the session."""
    from captioner.web.launch import start_server

    workdir = tmp_path_factory.mktemp("server")
    env = {"DATABASE_URL": f"sqlite:///{workdir / 'instance' / 'captioner.db'}",
           "SECRET_KEY": "browser-test-secret",
           "KEY": KEY, "ENDPOINT": fake_translator.endpoint, "LOCATION": REGION,
           "CAPTIONER_TRANSLATION_TIMEOUT": "2",
           "CAPTIONER_TRY_PRETRAINED": "0", "CAPTIONER_BUILD_DEMO": "0",
           "CAPTIONER_RATE_LIMIT": "off", "CAPTIONER_TRANSLATE_RATE_LIMIT": "off",  # one browser, many tests
           "CAPTIONER_REPORTS_DIR": str(reports_folder), "CAPTIONER_SCORE_MODEL": str(tiny_clip),
           "CAPTIONER_DATASETS_DIR": str(training_sets),
           "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    (workdir / "models").symlink_to(two_models, target_is_directory=True)  # pages then name ./models, no test path
    with start_server("models", "--threads", "4", env=env, cwd=workdir, log_path=workdir / "server.log",
                      timeout=START_TIMEOUT) as running:
        yield running.url


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser profile (no stored theme), clipboard allowed, on the served app."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"], color_scheme="light")
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Playwright starts intercepting file choosers only once something listens, without waiting for the
    # browser to confirm; listening from the start means a chooser opened by a quick key press is caught.
    page.on("filechooser", lambda chooser: None)
    page.evaluate("1")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots(request, tmp_path_factory) -> Path:
    """Where the screenshots go: ``--screenshots DIR`` when given, else a temporary folder."""
    chosen = request.config.getoption("--screenshots")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def sample_images(tmp_path_factory) -> list[Path]:
    """Pictures from the shapes data set the models were trained on."""
    from captioner.data.shapes import write_shapes_dataset

    folder = write_shapes_dataset(tmp_path_factory.mktemp("browser-shapes") / "shapes", images=6, seed=3)
    images = sorted((folder / "Images").iterdir())
    target = tmp_path_factory.mktemp("browser-images")
    copies = []
    for number, image in enumerate(images[:3]):
        copies.append(Path(shutil.copy(image, target / f"shape-{number}{image.suffix}")))
    return copies
