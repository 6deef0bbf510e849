"""One page, one truth, in a real Chromium against a real ASGI server (Daphne): while other
people act in their own browsers, an open request or task page re-renders everything that
depends on where the request is (status line, decision card and actions, waiting on, diagram,
history) and keeps what its reader is typing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.approvals.notify.live_server import seeded_daphne, start_request
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.processes import manage

pytestmark = pytest.mark.slow

MORE_PEOPLE = """
from django.test import Client
from approvals.models import Task
from tests.approvals.flows import multi_flow, publish
from tests.factories import GroupFactory, UserFactory
mia = UserFactory(username="mia", first_name="Mia", last_name="Manager",
                  groups=[GroupFactory(name="manager")])
publish(multi_flow({"quorum": 2}, ["manager"]))
client = Client()
client.force_login(mia)
print("SESSION=" + client.cookies["sessionid"].value)
"""

START_QUORUM = """
from django.utils import timezone
from accounts.models import User
from approvals.services.instances import instance_start
instance = instance_start(definition_key="multi", context={}, title="Two signatures",
                          actor=User.objects.get(username="rita"), now=timezone.now())
print("TASKS=" + ",".join(str(t.pk) for t in instance.tasks.order_by("pk")))
"""


@pytest.fixture
def server(tmp_path: Path):
    with seeded_daphne(tmp_path, MORE_PEOPLE) as running:
        yield running


@pytest.fixture
def people(server):
    """people(name) → a page signed in as that person, in a browser context of their own."""
    if not CHROMIUM.exists():
        pytest.fail("browser tests need Debian's chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    _, sessions, daphne = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts = {}

        def page_of(name: str):
            if name not in contexts:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(20_000)
                context.add_cookies(
                    [{"name": "sessionid", "value": sessions[name], "url": daphne.http}]
                )
                contexts[name] = context
            return contexts[name].new_page()

        try:
            yield page_of
        finally:
            browser.close()


def open_live(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(
        "() => document.getElementById('signoff-bell').dataset.live === 'online'"
    )


def test_the_request_page_follows_the_final_approval_in_every_part(server, people):
    env, _, daphne = server
    instance = start_request(env, "Standing desk")
    rita = people("rita")
    open_live(rita, f"{daphne.http}/requests/{instance}/")
    assert rita.inner_text("#status-line").startswith("Active · at Review")
    assert rita.locator("#withdraw").count() == 1

    rob = people("rob")
    rob.goto(f"{daphne.http}/inbox/?tab=queue")
    rob.click("text=Standing desk")
    rob.fill("#decide-form textarea[name=comment]", "Fine by me.")
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")

    # Without a reload every part tells the same story: the status line, the actions, who it
    # waits on, the diagram's highlight and the history.
    rita.wait_for_function("() => document.getElementById('status').textContent === 'Completed'")
    assert rita.inner_text("#status-line").startswith("Completed · asked by")
    assert " · at " not in rita.inner_text("#status-line")
    assert rita.locator("#withdraw").count() == 0
    assert "This request is completed" in rita.inner_text("#waiting")
    assert "current: Approved" in rita.get_attribute(".sd-svg", "aria-label")
    assert "Rob Reviewer approved" in rita.inner_text("#timeline")


def test_a_comment_typed_while_another_reviewer_wins_is_kept(server, people):
    env, _, daphne = server
    instance = start_request(env, "Projector")
    mia = people("mia")
    mia.goto(f"{daphne.http}/requests/{instance}/")
    mia.click("#waiting a")  # her own way to the task
    task_url = mia.url

    rob = people("rob")
    open_live(rob, task_url)
    rob.click("#decide-form textarea[name=comment]")
    rob.keyboard.type("Too expensive for a meeting room")

    mia.click("button[value=APPROVE]")
    mia.wait_for_url("**/inbox/**")

    rob.wait_for_selector("#live-note:not([hidden])")
    assert rob.inner_text("#live-note") == "Mia Manager decided this task: approved."
    assert "Decided by Mia Manager" in rob.inner_text("#decision")
    assert rob.locator("button[value=REJECT]").count() == 0
    # What Rob typed is still on his page, to copy, not thrown away.
    assert rob.locator("#unsent textarea").input_value() == "Too expensive for a meeting room"
    assert rob.inner_text("#status") == "Completed"


def test_typing_and_focus_survive_a_refresh_that_keeps_the_form(server, people):
    """Quorum of two: Mia's approval changes Rob's page (history, progress) while his own
    task stays open; his half-typed comment keeps its text, its focus and its caret."""
    env, _, daphne = server
    done = manage("shell", "-c", START_QUORUM, env=env)
    assert done.returncode == 0, done.stderr
    first, second = next(
        line.removeprefix("TASKS=").split(",")
        for line in done.stdout.splitlines()
        if line.startswith("TASKS=")
    )
    rob = people("rob")
    open_live(rob, f"{daphne.http}/tasks/{first}/")
    rob.click("#decide-form textarea[name=comment]")
    rob.keyboard.type("Checked the quote")

    mia = people("mia")
    mia.goto(f"{daphne.http}/tasks/{second}/")
    mia.click("button[value=APPROVE]")
    mia.wait_for_url("**/inbox/**")

    rob.wait_for_function(
        "() => document.getElementById('timeline').textContent.includes('Mia Manager approved')"
    )
    assert rob.locator("#decide-form textarea[name=comment]").input_value() == "Checked the quote"
    assert rob.evaluate("document.activeElement.name") == "comment"
    rob.keyboard.type(", all good.")
    assert (
        rob.locator("#decide-form textarea[name=comment]").input_value()
        == "Checked the quote, all good."
    )
    assert rob.locator("#live-note").is_hidden() and rob.locator("#unsent").count() == 0
    rob.click("button[value=APPROVE]")
    rob.wait_for_url("**/inbox/**")


def test_after_the_holder_gives_the_task_back_the_card_offers_claim(server, people):
    env, _, daphne = server
    instance = start_request(env, "Monitor arm")
    rob = people("rob")
    rob.goto(f"{daphne.http}/requests/{instance}/")
    rob.click("#waiting a")
    rob.click("#claim")
    task_url = rob.url

    mia = people("mia")
    open_live(mia, task_url)
    assert "Rob Reviewer has this task" in mia.inner_text("#decision")
    assert mia.locator("#claim").count() == 0

    rob.click("#unclaim")
    mia.wait_for_selector("#claim")
    assert "Rob Reviewer has this task" not in mia.inner_text("#decision")
    assert mia.locator("button[value=APPROVE]").count() == 1
    mia.click("#claim")
    assert "You claimed this task" in mia.inner_text(".messages")
