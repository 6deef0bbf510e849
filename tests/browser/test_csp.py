"""Every page works in a real browser under the Content-Security-Policy: nothing it needs is
blocked (the `login` fixture fails the test on any violation, tests/browser/csp.py)."""

from __future__ import annotations

import pytest

from tests.browser.csp import watch_csp
from tests.factories import TEST_PASSWORD
from tests.pages import ANONYMOUS_PAGES, admin_pages, reviewer_pages, site_with_a_request

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def visit(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert response.headers["content-security-policy"], url
    # Scripts are deferred and htmx fetches the tab counts after load: let them run.
    page.wait_for_load_state("networkidle")


def test_every_page_keeps_to_the_policy(browser, login, live_server, csp_guard) -> None:
    site = site_with_a_request()
    anonymous = csp_guard(browser.new_context()).new_page()
    for path in ANONYMOUS_PAGES:
        visit(anonymous, live_server.url + path)
    anonymous.wait_for_selector(".opblock-summary-path")  # Swagger UI drew the operations

    rob = login("rob", TEST_PASSWORD)
    for path in reviewer_pages(site):
        visit(rob, live_server.url + path)

    ada = login("ada", TEST_PASSWORD)
    for path in admin_pages(site):
        visit(ada, live_server.url + path)


def test_the_admin_s_widgets_work_under_the_policy(login, live_server) -> None:
    site = site_with_a_request()
    ada = login("ada", TEST_PASSWORD)
    # The two-box group chooser is built by the admin's JavaScript.
    visit(ada, f"{live_server.url}/admin/accounts/user/{site.reviewer.pk}/change/")
    ada.wait_for_selector(".selector-available")
    # The date pickers of an out-of-office entry, and the calendar they open.
    visit(ada, f"{live_server.url}/admin/accounts/outofoffice/add/")
    ada.click(".datetimeshortcuts a[id^=calendarlink]")
    ada.wait_for_selector(".calendarbox", state="visible")
    # The actions bar of a list counts the selected rows.
    visit(ada, f"{live_server.url}/admin/accounts/user/")
    ada.check("#action-toggle")
    ada.wait_for_selector(".action-counter", state="visible")


def test_an_injected_inline_script_is_blocked_and_caught(browser, live_server, db) -> None:
    violations: list[str] = []
    page = watch_csp(browser.new_context(), violations).new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s); }"
    )
    page.wait_for_function("() => true")  # let the violation report arrive
    assert page.evaluate("window.injected") is None
    assert any("script-src" in violation for violation in violations), violations
