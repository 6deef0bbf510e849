"""The reviewer's and requester's journeys in a real browser."""

from __future__ import annotations

import re

import pytest

from accounts.demo import ensure_demo_users
from accounts.models import User
from approvals.demo import ensure_demo_workflows
from approvals.models import Decision, InstanceStatus, Task, WorkflowInstance
from tests.factories import TEST_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def submit(page, live_server, title: str, amount: str) -> None:
    page.goto(f"{live_server.url}/requests/new/review/")
    page.fill("input[name=title]", title)
    page.fill("input[name=amount]", amount)
    page.click("text=Submit request")
    page.wait_for_url(re.compile(r".*/requests/\d+/$"))


def test_submit_approve_and_see_it_approved(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    submit(rita, live_server, "Ergonomic chair", "310")
    assert rita.locator("#status").inner_text() == "Active"
    assert "anyone in manager" in rita.locator("#waiting").inner_text()

    rob = login("rob", TEST_PASSWORD)
    rob.click("text=My roles' queue")
    rob.click("text=Ergonomic chair")
    rob.fill("textarea[name=comment]", "Fine by me.")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")
    assert "Decided: approve" in rob.locator(".messages").inner_text()

    rita.reload()
    assert rita.locator("#status").inner_text() == "Completed"
    assert "Rob Reviewer approved" in rita.locator("#timeline").inner_text()


def test_reject_without_a_comment_is_refused(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    submit(rita, live_server, "Standing desk", "640")
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.click("text=Standing desk")
    rob.click("button[value=REJECT]")
    assert "Say why (required)." in rob.locator("#decision").inner_text()
    assert WorkflowInstance.objects.get().state == "review"
    rob.fill("textarea[name=comment]", "Over budget.")
    rob.click("button[value=REJECT]")
    rob.wait_for_url("**/inbox/**")
    assert WorkflowInstance.objects.get().status == InstanceStatus.REJECTED


def test_delegate_with_the_name_suggestions(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    submit(rita, live_server, "Team offsite", "900")
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.click("text=Team offsite")
    rob.locator("input[name=to]").press_sequentially("Mia", delay=30)
    rob.wait_for_function(
        "() => document.querySelectorAll('#delegate_to-people option').length > 0"
    )
    assert rob.locator("#delegate_to-people option").first.get_attribute("value") == "mia"
    rob.fill("input[name=to]", "mia")
    rob.click("#delegate-form button[type=submit]")
    rob.wait_for_url("**/inbox/**")
    assert "Delegated to Mia Manager" in rob.locator(".messages").inner_text()

    mia = login("mia", TEST_PASSWORD)
    mia.click("text=Delegated to me")
    assert mia.locator("tr.inbox-row").count() == 1
    assert "from Rob Reviewer" in mia.locator("tr.inbox-row").inner_text()


def test_bulk_approve_with_the_keyboard(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    for title in ("Mouse", "Keyboard", "Headset"):
        submit(rita, live_server, title, "50")
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue&sort=age")
    rob.wait_for_function("() => document.querySelector('[data-count=queue]').textContent === '3'")
    rob.keyboard.press("j")
    rob.keyboard.press("x")  # Mouse
    rob.keyboard.press("j")
    rob.keyboard.press("x")  # Keyboard
    rob.click("#bulk-approve")
    results = rob.locator("#bulk-results").inner_text()
    assert "Mouse: approved" in results and "Keyboard: approved" in results
    assert "2 approved" in rob.inner_text("h1 + p")
    assert Decision.objects.count() == 2
    assert Task.objects.get(instance__title="Headset").status == "open"


def test_keyboard_opens_and_claims(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    submit(rita, live_server, "Monitor arm", "80")
    rob = login("rob", TEST_PASSWORD)
    rob.goto(f"{live_server.url}/inbox/?tab=queue")
    rob.keyboard.press("j")
    rob.keyboard.press("c")
    rob.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    assert "You claimed this task" in rob.locator(".messages").inner_text()
    assert Task.objects.get().assignee.username == "rob"
    rob.goto(f"{live_server.url}/inbox/?tab=mine")
    rob.keyboard.press("j")
    rob.keyboard.press("Enter")
    rob.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    assert "Monitor arm" in rob.locator("h1").inner_text()


def test_two_reviewers_on_one_task_the_second_is_told_who_decided(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    submit(rita, live_server, "Projector", "700")
    task = Task.objects.get()
    rob = login("rob", TEST_PASSWORD)
    mia = login("mia", TEST_PASSWORD)
    for page in (rob, mia):
        page.goto(f"{live_server.url}/tasks/{task.pk}/")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")
    mia.fill("textarea[name=comment]", "Too expensive.")
    mia.click("button[value=REJECT]")
    text = mia.locator(".messages").inner_text()
    assert "Already decided by Rob Reviewer" in text and "(APPROVE)" in text
    assert "Decided by Rob Reviewer" in mia.locator("#decision").inner_text()
    assert WorkflowInstance.objects.get().status == InstanceStatus.COMPLETED


def test_screenshots_of_the_inbox_and_the_task_page(login, live_server, screenshots, db):
    """With the demo data, as a newcomer sees it (SCREENSHOTS_DIR=docs/screenshots to update
    the README's pictures)."""
    ensure_demo_users()
    ensure_demo_workflows()
    bob = User.objects.get(username="bob")
    bob.set_password(TEST_PASSWORD)  # tests run with DEBUG off, so demo users get none
    bob.save()
    bob = login("bob", TEST_PASSWORD)
    bob.goto(f"{live_server.url}/inbox/?tab=queue")
    bob.keyboard.press("j")
    bob.screenshot(path=str(screenshots / "inbox.png"))
    bob.keyboard.press("Enter")
    bob.wait_for_url(re.compile(r".*/tasks/\d+/$"))
    bob.screenshot(path=str(screenshots / "task.png"), full_page=True)
    for name in ("inbox.png", "task.png"):
        assert (screenshots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
