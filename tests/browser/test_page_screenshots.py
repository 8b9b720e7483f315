"""The pages as a visitor first sees them, light and dark, for the documentation (docs/screenshots/ with
``make screenshots``): the whole navigation, the one-line notice, and nothing of the machine they ran on."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser.test_ui import shoot

PAGES = {"home": "/", "caption": "/caption", "models": "/models"}
NAVIGATION = ["Home", "Caption", "Caption many", "Training sets", "Models", "History"]


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_as_first_seen(browser, server, screenshots, tmp_path_factory, name, theme):
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900}, color_scheme=theme)
    try:
        page = context.new_page()
        page.goto(PAGES[name])
        expect(page.locator("nav[aria-label=Main] a")).to_have_text(NAVIGATION)
        notice = page.locator(".notice")
        if name == "models":  # the page that tells the whole story needs no pointer to itself
            expect(notice).to_have_count(0)
            expect(page.locator(".model-notes")).to_contain_text("captioner train lstm")
        else:  # the demo models alone: one line that points to the models page
            expect(notice).to_have_count(1)
            expect(notice.locator("a")).to_have_attribute("href", "/models")
            assert notice.inner_text().count(".") <= 2, notice.inner_text()
        text = page.locator("body").inner_text()
        assert str(tmp_path_factory.getbasetemp()) not in text and "pytest-of" not in text
        shoot(page, screenshots / f"{name}-{theme}.png")
    finally:
        context.close()
