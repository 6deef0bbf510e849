"""The definition editor in the admin, in a real browser: the page fits the window, a step's
task is edited with fields, transitions with a target list and a live guard check, and
publishing asks first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from approvals.machine.loader import load_document
from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_import
from tests.browser.test_phones_and_accessibility import axe_problems
from tests.factories import TEST_PASSWORD, GroupFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKFLOWS = Path(__file__).resolve().parents[2] / "approvals" / "workflows"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def draft(admin_user) -> WorkflowDefinition:
    for role in ("manager", "director", "finance"):
        GroupFactory(name=role)
    config = load_document((WORKFLOWS / "purchase_order.yaml").read_text())
    return definition_import(config=config, actor=admin_user, now=timezone.now())


def admin_page(browser: Any, live_server: Any, csp_guard: Any, viewport: dict[str, int]) -> Any:
    """Ada's admin in a context that fails the test on a Content-Security-Policy violation
    (csp_guard), or in a plain one for axe-core, which styles the page inline."""
    context = browser.new_context(viewport=viewport)
    context = csp_guard(context) if csp_guard else context
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def change_url(live_server: Any, definition: WorkflowDefinition) -> str:
    return f"{live_server.url}/admin/approvals/workflowdefinition/{definition.pk}/change/"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_definition_page_fits_the_window(
    browser, live_server, csp_guard, draft, viewport, screenshots
):
    page = admin_page(browser, live_server, csp_guard, viewport)
    page.goto(change_url(live_server, draft))
    width = viewport["width"]
    page.locator("#states-0").screenshot(path=screenshots / f"definition-step-{width}.png")
    page.locator("#transitions-group").screenshot(
        path=screenshots / f"definition-arrows-{width}.png"
    )
    assert page.locator(".inline-related").count() > 1
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]}px wide in a {widths[1]}px window"


def row_of(definition: WorkflowDefinition, path: str) -> int:
    return list(definition.states.values_list("path", flat=True)).index(path)


def save(page: Any) -> None:
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")


def test_a_step_s_task_is_edited_with_fields(browser, live_server, csp_guard, draft):
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    n = row_of(draft, "manager_review")
    page.select_option(f"#id_states-{n}-task_roles", ["manager", "director"])
    page.select_option(f"#id_states-{n}-task_rule", "quorum")
    page.fill(f"#id_states-{n}-task_quorum", "2")
    page.fill(f"#id_states-{n}-task_sla_0", "3")
    assert page.locator(f"#id_states-{n}-task_sla_1 option:checked").inner_text() == (
        "business days"  # the purchase order counts working time (its calendar)
    )
    page.fill(f"#id_states-{n}-task_remind_0_0", "4")
    page.select_option(f"#id_states-{n}-task_remind_0_1", "hours")
    page.uncheck(f"#id_states-{n}-task_forbid_requester")
    save(page)
    task = draft.states.get(path="manager_review").task
    assert task["roles"] == ["director", "manager"]
    assert task["rule"] == {"quorum": 2}
    assert task["sla"] == "P3D" and task["remind"] == ["PT4H"]
    assert task["forbid_requester"] is False

    # Bad input: a reminder of "two" hours is refused next to its field, nothing is saved.
    page.fill(f"#id_states-{n}-task_remind_0_0", "two")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errornote")
    assert "Expected a whole number of hours" in page.inner_text(f"#states-{n}")
    assert draft.states.get(path="manager_review").task["remind"] == ["PT4H"]


def test_every_member_of_a_role_can_be_asked_to_approve(browser, live_server, csp_guard, draft):
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    n = row_of(draft, "manager_review")
    rule = f"#id_states-{n}-task_rule"
    assert "everyone: every member of the roles must approve" in page.inner_text(rule)
    page.select_option(rule, "everyone")
    save(page)
    assert draft.states.get(path="manager_review").task["rule"] == "everyone"
    assert page.locator(f"{rule} option:checked").get_attribute("value") == "everyone"


def test_a_guard_is_checked_as_it_is_typed(browser, live_server, csp_guard, draft):
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    arrows = list(draft.transitions.values_list("source", "event"))
    n = arrows.index(("manager_review", "REJECT"))
    guard = page.locator(f"#id_transitions-{n}-guard")
    check = page.locator(f"#transitions-{n} output.guard-check")
    guard.fill("amout > 5")
    page.wait_for_function(
        "(n) => document.querySelector(`#transitions-${n} output.guard-check`).textContent",
        arg=n,
    )
    assert "Amout is not a field of the request (did you mean amount?)" in check.inner_text()
    assert guard.get_attribute("aria-invalid") == "true"
    guard.fill("amount > 5")
    page.wait_for_function(
        "(n) => document.querySelector(`#transitions-${n} output.guard-check`)"
        ".classList.contains('guard-ok')",
        arg=n,
    )
    assert check.inner_text() == "✔ The engine can read this guard."
    page.fill(f"#id_transitions-{n}-description", "Only above five")
    page.select_option(f"#id_transitions-{n}-target", "withdrawn")
    save(page)
    arrow = draft.transitions.get(source="manager_review", event="REJECT")
    assert (arrow.guard, arrow.description, arrow.target) == (
        "amount > 5",
        "Only above five",
        "withdrawn",
    )


def test_the_page_lists_every_problem_at_once_in_words(browser, live_server, csp_guard, draft):
    draft.transitions.filter(source="manager_review", event="REJECT").update(target="nowhere")
    draft.transitions.filter(target="withdrawn").delete()  # nothing leads there any more
    draft.states.filter(path="manager_review").update(task={"roles": ["managr"]})
    # The example's scenarios would list their own consequences of the damage: without them.
    draft.settings = {k: v for k, v in draft.settings.items() if k != "scenarios"}
    draft.save(update_fields=["settings"])
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    problems = page.locator("#definition-problems li").all_inner_texts()
    assert problems == [
        "Step Manager approval, its task's roles: the role managr does not exist; did you mean "
        "manager? (states.manager_review.meta.task.roles)",
        "Step Manager approval: the Reject arrow points to nowhere, which does not exist "
        "(states.manager_review.on.REJECT[0].target)",
        "Step Withdrawn: cannot be reached from the first step (states.withdrawn)",
    ]
    assert page.locator("#definition-problems li em").first.inner_text() == "Manager approval"
    assert page.locator("#publish-link").count() == 0  # nothing to publish until fixed


def test_publishing_asks_first_and_warns_of_guards_that_can_block(
    browser, live_server, csp_guard, draft
):
    # Above 10,000 the manager's approval goes to the director; below it, to finance. Without
    # the second arrow an approval of a smaller purchase would be refused.
    draft.transitions.filter(
        source="manager_review", event="APPROVE", target="finance_review"
    ).delete()
    # The example's scenarios would now fail and keep it from being published: without them.
    draft.settings = {k: v for k, v in draft.settings.items() if k != "scenarios"}
    draft.save(update_fields=["settings"])
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    page.click("#publish-link")
    page.wait_for_url("**/publish/")
    assert page.locator("#publish-warnings li").all_inner_texts() == [
        "In Manager approval, Approve can be blocked by its guard `amount >= 10000` and no "
        "other arrow takes APPROVE then"
    ]
    page.click("text=Back")
    page.wait_for_url(change_url(live_server, draft))
    draft.refresh_from_db()
    assert draft.status == "draft"

    page.click("#publish-link")
    page.click("#confirm-publish")
    page.wait_for_selector(".messagelist")
    assert "published" in page.inner_text(".messagelist")
    draft.refresh_from_db()
    assert draft.status == "published"


def test_a_new_step_can_be_chosen_as_a_target_before_it_is_saved(
    browser, live_server, csp_guard, draft
):
    page = admin_page(browser, live_server, csp_guard, DESKTOP)
    page.goto(change_url(live_server, draft))
    states = draft.states.count()
    page.click("#states-group .add-row a")
    page.fill(f"#id_states-{states}-path", "legal_review")
    page.fill(f"#id_states-{states}-position", str(states))
    page.keyboard.press("Tab")  # the change event: the step is offered in the arrows' lists
    arrows = draft.transitions.count()
    page.click("#transitions-group .add-row a")
    page.select_option(f"#id_transitions-{arrows}-source", "manager_review")
    page.fill(f"#id_transitions-{arrows}-event", "ASK_LEGAL")
    page.select_option(f"#id_transitions-{arrows}-target", "legal_review")
    page.fill(f"#id_transitions-{arrows}-position", str(arrows))
    save(page)
    arrow = draft.transitions.get(event="ASK_LEGAL")
    assert (arrow.source, arrow.target) == ("manager_review", "legal_review")
    # The new step has no way out yet: the page says so, in words.
    assert (
        "Step Legal review: no way out (add on, always, after or invoke, or make it type: "
        "final) (states.legal_review)"
    ) in page.locator("#definition-problems").inner_text()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_nothing_serious_in_the_editor(browser, live_server, draft, viewport):
    page = admin_page(browser, live_server, None, viewport)
    page.goto(change_url(live_server, draft))
    assert axe_problems(page) == []
    page.goto(change_url(live_server, draft).replace("/change/", "/publish/"))
    assert axe_problems(page) == []
