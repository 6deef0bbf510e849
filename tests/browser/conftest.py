"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against a live server."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without these, Chromium tries to reach Google's services, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    """A Chromium for one test. Playwright's sync API keeps an event loop running in the test's
    thread while it is started, which Django takes for async code; the ORM calls the test makes
    meanwhile are ordinary synchronous code, so the guard is lifted for this test only (other
    tests, and the processes they start, keep it)."""
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def login(browser, live_server, csp_guard) -> Iterator[Callable[[str, str], object]]:
    """login(username, password) → a page of a fresh browser context, signed in; the test fails
    if a page of it breaks the Content-Security-Policy."""
    contexts = []

    def sign_in(username: str, password: str) -> object:
        context = csp_guard(browser.new_context(viewport={"width": 1280, "height": 860}))
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox/")
        return page

    yield sign_in
    for context in contexts:
        context.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: SCREENSHOTS_DIR (docs/screenshots for the README) or a temp dir."""
    target = Path(os.environ.get("SCREENSHOTS_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


@pytest.fixture
def people(db) -> dict[str, object]:
    """The review flow and its people: Rita asks, Rob and Mia review (role manager)."""
    from tests.approvals.flows import publish, review_flow
    from tests.factories import GroupFactory, UserFactory

    publish(review_flow())
    manager = GroupFactory(name="manager")
    return {
        "rita": UserFactory(username="rita", first_name="Rita", last_name="Requester"),
        "rob": UserFactory(
            username="rob", first_name="Rob", last_name="Reviewer", groups=[manager]
        ),
        "mia": UserFactory(username="mia", first_name="Mia", last_name="Manager", groups=[manager]),
    }
