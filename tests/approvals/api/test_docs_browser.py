"""The interactive API docs work in a real browser that may reach nothing but our server."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser_page(monkeypatch, csp_guard):
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    # Playwright's sync API runs an event loop in this thread, where the test database is then
    # flushed; only for this test (a leaked variable would fail `check --deploy` elsewhere).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield csp_guard(browser.new_context()).new_page()
        finally:
            browser.close()


def test_swagger_ui_renders_without_internet(live_server, browser_page):
    ours = urlsplit(live_server.url).netloc
    outside: list[str] = []

    def only_ours(route) -> None:
        if urlsplit(route.request.url).netloc in (ours, "") or route.request.url.startswith(
            ("data:", "blob:")
        ):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    browser_page.route("**/*", only_ours)
    errors: list[str] = []
    browser_page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_page.goto(live_server.url + "/api/docs/")
    browser_page.wait_for_selector(".opblock-summary-path", timeout=30_000)  # the operations
    text = browser_page.content()
    assert "/api/v1/workflows/{key}/instances/" in text or "instances_start" in text
    assert outside == [], outside
    assert errors == []
