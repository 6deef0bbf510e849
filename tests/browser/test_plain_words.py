"""What people read, in a real browser: pages and messages in plain words, not the engine's."""

from __future__ import annotations

import pytest

from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_embedded_default_shows_friendly_error_pages(settings, login, live_server, requester):
    settings.DEBUG = True  # as `launch.py run` with nothing set
    settings.TECHNICAL_ERROR_PAGES = False
    page = login("rita", TEST_PASSWORD)
    response = page.goto(f"{live_server.url}/no-such-page/")
    assert response.status == 404
    text = page.locator("main").inner_text()
    assert "Not found" in text and "Back to your inbox" in text
    assert "URLconf" not in page.content() and "api/v1/" not in page.content()
    page.click("text=Back to your inbox")
    page.wait_for_url("**/inbox/")
