"""Live pages in a real Chromium against a real ASGI server (Daphne): another reviewer's
decision and a request started elsewhere change an open inbox and task page without a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.approvals.notify.live_server import seeded_daphne, start_request
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

SECOND_MANAGER = """
from django.test import Client
from tests.factories import GroupFactory, UserFactory
mia = UserFactory(username="mia", first_name="Mia", last_name="Manager",
                  groups=[GroupFactory(name="manager")])
client = Client()
client.force_login(mia)
print("SESSION=" + client.cookies["sessionid"].value)
"""


@pytest.fixture
def server(tmp_path: Path):
    with seeded_daphne(tmp_path, SECOND_MANAGER) as running:
        yield running


def test_an_open_inbox_and_task_page_follow_other_peoples_changes(server, csp_guard):
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    env, sessions, daphne = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            pages = {}
            for name in ("rob", "mia"):
                context = csp_guard(browser.new_context(viewport={"width": 1200, "height": 800}))
                context.set_default_timeout(20_000)
                context.add_cookies(
                    [{"name": "sessionid", "value": sessions[name], "url": daphne.http}]
                )
                pages[name] = context
            inbox = pages["rob"].new_page()
            inbox.goto(daphne.http + "/inbox/?tab=queue")
            inbox.wait_for_function(
                "() => document.getElementById('signoff-bell').dataset.live === 'online'"
            )
            assert inbox.locator("tr.inbox-row").count() == 0

            # A request started by another process appears in the open inbox.
            start_request(env, "Standing desk")
            inbox.wait_for_selector("tr.inbox-row")
            assert "Standing desk" in inbox.locator("tr.inbox-row").inner_text()
            task_url = inbox.locator("tr.inbox-row a").first.get_attribute("href")

            # Rob also has the task page open while Mia decides it.
            task_page = pages["rob"].new_page()
            task_page.goto(daphne.http + task_url)
            task_page.wait_for_function(
                "() => document.getElementById('signoff-bell').dataset.live === 'online'"
            )
            assert task_page.locator("button[value=APPROVE]").count() == 1

            mia = pages["mia"].new_page()
            mia.goto(daphne.http + task_url)
            mia.click("button[value=APPROVE]")
            mia.wait_for_url("**/inbox/**")

            inbox.wait_for_function("() => document.querySelectorAll('tr.inbox-row').length === 0")
            task_page.wait_for_selector("#live-note:not([hidden])")
            assert task_page.inner_text("#live-note") == "Mia Manager decided this task: approved."
            task_page.wait_for_selector("text=Decided by")
            assert "Decided by Mia Manager" in task_page.inner_text("#decision")
            assert task_page.locator("button[value=APPROVE]").count() == 0
        finally:
            browser.close()
