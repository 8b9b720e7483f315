"""The API reference page in a real browser: Swagger UI from the package's own files renders every operation
of the served document, inside the Content-Security-Policy (no violation, no script error)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_api_reference_renders_within_the_policy(page, server):
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text else None)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/")
    page.click("footer >> text=API reference")
    page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/chat/completions" in path for path in paths)
    assert any("/api/v1/captions" in path for path in paths)
    assert violations == []
    assert all(url.startswith(server) or url.startswith("data:") for url in requested), requested
