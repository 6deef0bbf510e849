"""Every page on a phone and for a keyboard or screen-reader user: nothing scrolls sideways,
the menu and the filters fold away, inbox rows are cards, and axe-core finds nothing serious."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.demo import ensure_demo_users
from accounts.models import User
from approvals.demo import ensure_demo_requests, ensure_demo_workflows
from approvals.models import Task, TaskStatus
from approvals.services.api_tokens import token_create
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# axe-core from the npm registry (tests only, never served; see vendor/README.md).
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


@pytest.fixture
def demo(db):
    ensure_demo_users()
    ensure_demo_workflows()
    ensure_demo_requests()
    for user in User.objects.all():
        user.set_password(TEST_PASSWORD)  # tests run with DEBUG off: demo users get none
        user.save()
    bob = User.objects.get(username="bob")
    token_create(user=bob, name="laptop script", actor=bob, now=timezone.now())
    task = Task.objects.filter(status=TaskStatus.OPEN, candidate_groups__name="manager").first()
    return {"task": task, "instance": task.instance}


def open_page(browser, live_server, viewport, username=None):
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    if username:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/inbox/**")
    return page


def reader_pages(demo) -> list[str]:
    return [
        "/inbox/",
        "/inbox/?tab=queue",
        "/inbox/?tab=done",
        f"/tasks/{demo['task'].pk}/",
        f"/requests/{demo['instance'].pk}/",
        "/requests/",
        "/requests/new/",
        "/requests/new/purchase-order/",
        "/notifications/",
        "/accounts/profile/",
        "/accounts/password_change/",
        "/accounts/api-tokens/",
    ]


def axe_problems(page) -> list[str]:
    """Serious and critical axe-core violations, as "rule: selector" lines."""
    page.evaluate("() => {" + AXE + "}")
    found = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "));
        }"""
    )
    duplicates = page.evaluate(
        """() => {
            const seen = {}, twice = [];
            for (const el of document.querySelectorAll("[id]")) {
                if (seen[el.id]) twice.push(el.id); seen[el.id] = true;
            }
            return twice;
        }"""
    )
    return found + [f"duplicate id: {name}" for name in duplicates]


def sideways(page) -> int:
    """How many pixels the page scrolls sideways (0: none)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_serious_on_any_page(browser, live_server, demo, viewport):
    anonymous = open_page(browser, live_server, viewport)
    anonymous.goto(f"{live_server.url}/accounts/login/")
    problems = {"/accounts/login/": axe_problems(anonymous)}
    page = open_page(browser, live_server, viewport, "bob")
    for path in reader_pages(demo):
        page.goto(live_server.url + path)
        problems[path] = axe_problems(page)
    assert {path: found for path, found in problems.items() if found} == {}, json.dumps(
        problems, indent=1
    )


def test_nothing_scrolls_sideways_on_a_phone(browser, live_server, demo):
    anonymous = open_page(browser, live_server, PHONE)
    anonymous.goto(f"{live_server.url}/accounts/login/")
    widths = {"/accounts/login/": sideways(anonymous)}
    page = open_page(browser, live_server, PHONE, "bob")
    for path in reader_pages(demo):
        page.goto(live_server.url + path)
        widths[path] = sideways(page)
    assert {path: px for path, px in widths.items() if px > 0} == {}


def test_on_a_phone_the_menu_and_filters_fold_and_rows_are_cards(browser, live_server, demo):
    page = open_page(browser, live_server, PHONE, "bob")
    page.goto(f"{live_server.url}/inbox/?tab=queue")
    menu = page.locator("#menu-toggle")
    assert menu.is_visible() and menu.get_attribute("aria-expanded") == "false"
    assert not page.locator("nav.nav").is_visible()
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert page.locator("nav.nav a", has_text="My requests").is_visible()
    menu.click()
    assert not page.locator("nav.nav").is_visible()

    filters = page.locator("#filters-toggle")
    assert not page.locator("select[name=workflow]").is_visible()
    filters.click()
    assert page.locator("select[name=workflow]").is_visible()

    row = page.locator("tr.inbox-row").first
    assert row.evaluate("el => getComputedStyle(el).display") == "block"
    assert row.locator("td.title a").is_visible()
    labels = row.locator("td[data-label]").evaluate_all(
        "cells => cells.map(c => getComputedStyle(c, '::before').content)"
    )
    assert labels == ['"Workflow: "', '"Step: "', '"Requester: "', '"Age: "', '"Due: "']
    box = row.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]


def test_on_a_desktop_nothing_is_folded(browser, live_server, demo):
    page = open_page(browser, live_server, DESKTOP, "bob")
    page.goto(f"{live_server.url}/inbox/?tab=queue")
    assert not page.locator("#menu-toggle").is_visible()
    assert not page.locator("#filters-toggle").is_visible()
    assert page.locator("nav.nav a", has_text="My requests").is_visible()
    assert page.locator("select[name=workflow]").is_visible()
    assert page.locator("table.inbox thead").is_visible()


def test_on_a_phone_the_decision_comes_before_the_diagram(browser, live_server, demo):
    page = open_page(browser, live_server, PHONE, "bob")
    page.goto(f"{live_server.url}/tasks/{demo['task'].pk}/")
    claim = page.locator("#claim")
    assert claim.bounding_box()["y"] < page.locator(".sd-diagram").bounding_box()["y"]
    assert claim.bounding_box()["y"] < PHONE["height"] * 2


def test_the_keyboard_skips_to_the_content_and_sees_where_it_is(browser, live_server, demo):
    page = open_page(browser, live_server, DESKTOP, "bob")
    page.goto(f"{live_server.url}/tasks/{demo['task'].pk}/")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    assert skip.evaluate("el => el === document.activeElement") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    # A focused blue button shows a ring that is not blue-on-blue.
    page.locator("#claim").focus()
    ring = page.locator("#claim").evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineColor]; }"
    )
    assert ring[0] != "none"
    background = page.locator("#claim").evaluate("el => getComputedStyle(el).backgroundColor")
    assert ring[1] != background
