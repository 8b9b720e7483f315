"""A `captioner compare` report of the two served models, reached from the models page in Chromium; and the
caption page's CLIPScore badge."""

from __future__ import annotations

import json
import shutil

import pytest
from playwright.sync_api import expect

from support.cli import run_main


def test_the_models_page_leads_to_the_report(page, two_models, reports_folder, sample_images, tiny_clip,
                                             screenshots, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in sample_images:
        shutil.copy(image, photos / image.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAPTIONER_SCORE_MODEL", str(tiny_clip))
        result = run_main("compare", photos, "--models", "shapes-demo,shapes-attention", "--models-dir", two_models,
                          "--out", reports_folder / "compare-browser", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)

    page.goto("/models")
    page.get_by_role("link", name="The latest comparison").click()
    expect(page).to_have_title("Captioners compared on your photos")
    rows = page.locator("table.summary tbody tr")
    expect(rows).to_have_count(2)
    first = summary["models"][0]
    expect(rows.first).to_contain_text(f"{first['mean_clip_score']:.3f}")
    expect(page.locator("table.photos tbody tr")).to_have_count(len(sample_images))
    expect(page.locator("table.photos img").first).to_have_js_property("complete", True)
    assert page.locator("table.photos img").first.evaluate("image => image.naturalWidth") > 0
    assert page.locator("img.plot").evaluate("image => image.naturalWidth") > 0
    page.screenshot(path=str(screenshots / "compare-report.png"), full_page=True)


def test_the_caption_page_shows_the_clip_score_badge(page, sample_images):
    page.goto("/caption")
    page.set_input_files("#image-input", str(sample_images[0]))
    page.check("#score-input")
    page.click("#caption-button")
    badge = page.locator("#caption-result .clip-score")
    expect(badge).to_be_visible(timeout=60_000)
    expect(badge).to_contain_text("CLIPScore")
    value = float(badge.locator(".clip-score-value").inner_text())
    assert 0 <= value <= 2.5
