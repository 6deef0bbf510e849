"""live.js in a real Chromium: a change committed by another process reaches an open page, whose
bell, toast and `signoff:notification` DOM event follow without a reload."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.approvals.notify.live_server import Daphne, seed, start_request
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = BASE_DIR / "docs" / "screenshots" / "notifications.png"


@pytest.fixture
def server(tmp_path: Path):
    env = child_env(tmp_path)
    sessions = seed(env)
    daphne = Daphne(env, tmp_path / "daphne.log").start()
    yield env, sessions, daphne
    daphne.stop()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_an_open_page_shows_a_new_task_live(server, csp_guard):
    from playwright.sync_api import sync_playwright

    env, sessions, daphne = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = csp_guard(browser.new_context(viewport={"width": 1100, "height": 640}))
            context.add_cookies(
                [{"name": "sessionid", "value": sessions["rob"], "url": daphne.http}]
            )
            page = context.new_page()
            page.goto(daphne.http + "/notifications/")
            assert page.locator("[data-unread-count]").is_hidden()
            page.evaluate(
                "window.received = [];"
                "document.addEventListener('signoff:notification', e => received.push(e.detail));"
                "document.addEventListener('signoff:event', e => received.push(e.detail));"
            )
            page.wait_for_function(
                "() => document.getElementById('signoff-bell').dataset.live === 'online'"
            )

            instance = start_request(env, "Standing desk")

            page.wait_for_function(
                "() => received.some(d => d.kind === 'task_new')", timeout=20_000
            )
            details = page.evaluate("received")
            note = next(d for d in details if d.get("kind") == "task_new")
            assert note["instance"] == instance and note["url"] == f"/tasks/{note['task']}/"
            assert note["text"] == "New task: Review for “Standing desk”"
            page.wait_for_function(
                "() => received.some(d => d.topic === 'task.created' && !d.kind)"
            )
            assert page.locator("[data-unread-count]").inner_text() == "1"
            assert page.locator(".toast").inner_text().startswith("New task: Review")
            assert page.locator("[data-unread-label]").inner_text() == "(1 unread)"
            row = page.locator(f"[data-notification-id='{note['id']}']")
            assert row.inner_text().startswith("New task: Review for “Standing desk”")
            if os.environ.get("SIGNOFF_SCREENSHOTS"):  # refresh docs/screenshots on demand
                page.screenshot(path=str(SCREENSHOT))

            # Mark all read on the page: the bell follows after the reload.
            page.reload()
            page.get_by_role("button", name="Mark all read").click()
            page.wait_for_load_state()
            assert page.locator("[data-unread-count]").is_hidden()
        finally:
            browser.close()
