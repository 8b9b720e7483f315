"""Screenshots of the web app, light and dark, into docs/screenshots/.

Starts `captioner serve` on a free port of 127.0.0.1 with the given models folder (default: ./models
when it holds bundles, else the shapes demo model built into .cache/screenshot-models), captions a
picture on the caption page in Debian's Chromium through Playwright, and saves the pages.

    PYTHONPATH=src python scripts/screenshots.py [--models-dir DIR] [--image PATH] [--out docs/screenshots]

Playwright never downloads a browser here: it drives /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def models_folder(given: str | None) -> Path:
    from captioner.models.bundle import list_bundles

    if given:
        return Path(given)
    if list_bundles(ROOT / "models"):
        return ROOT / "models"
    folder = ROOT / ".cache" / "screenshot-models"
    if not (folder / "shapes-demo" / "captioner.json").is_file():
        from captioner.training.demo import build_demo_model

        build_demo_model(folder)
    return folder


def sample_image(given: str | None) -> Path:
    if given:
        return Path(given)
    from captioner.data.shapes import write_shapes_dataset

    folder = write_shapes_dataset(Path(tempfile.mkdtemp()) / "shapes", images=12, seed=11)
    return sorted((folder / "Images").iterdir())[5]


def start_server(models: Path):
    """The server in a scratch folder whose ./models links to each bundle, so pages show no local paths."""
    from captioner.models.bundle import list_bundles
    from captioner.web.launch import ServerStartError
    from captioner.web.launch import start_server as start

    scratch = Path(tempfile.mkdtemp(prefix="captioner-shots-"))
    (scratch / "models").mkdir()
    for path, info in list_bundles(models):
        (scratch / "models" / path.name).symlink_to(path.resolve(), target_is_directory=True)
    try:
        return start("models", cwd=scratch, env={"CAPTIONER_TRY_PRETRAINED": "0", "SECRET_KEY": "shots"})
    except ServerStartError as error:
        raise SystemExit(str(error)) from None


def shoot(base: str, image: Path, out: Path, compare: bool) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for theme in ("light", "dark"):
            context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme=theme,
                                          device_scale_factor=1)
            page = context.new_page()
            page.goto(base + "/caption")
            page.set_input_files("#image-input", str(image))
            if compare:
                page.select_option("#model-select", "*")
            page.check('input[name="method"][value="beam"]')
            page.click("#caption-button")
            page.wait_for_selector("#caption-result .result .caption-text:not(:empty)", timeout=60_000)
            page.evaluate("document.querySelectorAll('details.alternatives:not([hidden])').forEach(d => d.open = true)")
            page.mouse.move(0, 0)
            page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")  # the header belongs on top
            path = out / f"caption-{theme}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
            for name in ("", "models"):
                page.goto(f"{base}/{name}")
                page.evaluate("window.scrollTo(0, 0)")
                path = out / f"{name or 'home'}-{theme}.png"
                page.screenshot(path=str(path), full_page=True)
                saved.append(path)
            context.close()
        browser.close()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", help="models folder to serve")
    parser.add_argument("--image", help="picture to caption (default: a shapes picture)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="where the PNGs go")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium package (scripts/system-packages.sh)")
    models = models_folder(args.models_dir)
    server = start_server(models)
    base = server.url
    try:
        import requests

        compare = len(requests.get(base + "/api/v1/models", timeout=5).json()["models"]) > 1
        for path in shoot(base, sample_image(args.image), Path(args.out), compare):
            print(path)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
