"""The request page, a failed automated step's review and the admin's operations, in a real
browser: one withdrawal, what the request shows, a step a person can follow, and buttons that
post what they say."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from approvals.actions import ActionCall, PermanentError, register_action
from approvals.automation.runner import action_execute
from approvals.models import FailedAction, InstanceStatus, OutboxMessage, Task, WorkflowInstance
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import publish, review_flow
from tests.browser.test_phones_and_accessibility import axe_problems
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# What the ERP step answers next, in order; a success once the list is empty.
ERP_ANSWERS: list[Exception] = []

ERP_FLOW = {
    "id": "erp",
    "title": "Purchase",
    "initial": "notify_erp",
    "form": {"type": "object", "properties": {"title": {"type": "string"}}},
    "states": {
        "notify_erp": {
            "meta": {"label": "Notify ERP"},
            "invoke": {
                "src": "test_erp",
                "retry": {"max_attempts": 3, "delay": "PT1M"},
                "onDone": "done",
            },
        },
        "done": {"type": "final"},
    },
}

NOTICE_FLOW = {
    "id": "notice",
    "title": "Purchase order",
    "initial": "approved",
    "form": {
        "type": "object",
        "properties": {"title": {"type": "string"}, "amount": {"type": "number"}},
    },
    "states": {
        "approved": {
            "invoke": {
                "src": "notify",
                "input": {"message": "Your purchase order was approved; finance orders it."},
                "onDone": "done",
            }
        },
        "done": {"type": "final"},
    },
}


@register_action("test_erp")
def erp(call: ActionCall) -> Mapping[str, Any]:
    if ERP_ANSWERS:
        raise ERP_ANSWERS.pop(0)
    return {"reference": "PO-7"}


@pytest.fixture
def people(db):
    ERP_ANSWERS.clear()
    publish(review_flow())
    manager = GroupFactory(name="manager")
    operator = GroupFactory(name="operator")
    oscar = UserFactory(username="oscar", first_name="Oscar", last_name="Ortiz", groups=[operator])
    oscar.user_permissions.add(
        *Permission.objects.filter(codename__in=["cancel_instance", "reassign_task", "send_event"])
    )
    return {
        "rita": UserFactory(username="rita", first_name="Rita", last_name="Requester"),
        "rob": UserFactory(
            username="rob", first_name="Rob", last_name="Reviewer", groups=[manager]
        ),
        "mia": UserFactory(username="mia", first_name="Mia", last_name="Manager", groups=[manager]),
        "oscar": oscar,
        "ada": UserFactory(
            username="ada", first_name="Ada", last_name="Admin", is_staff=True, is_superuser=True
        ),
    }


def start(people, key: str = "review", **context: Any) -> WorkflowInstance:
    return instance_start(
        definition_key=key,
        context={"title": "Laptop", "amount": 1200, **context},
        actor=people["rita"],
        now=_now(),
    )


def _now():
    from django.utils import timezone

    return timezone.now()


def attempt(instance: WorkflowInstance) -> str:
    """One attempt of the step, as the worker makes it once the message is due."""
    message = (
        OutboxMessage.objects.filter(instance=instance, topic="action.invoke").order_by("pk").last()
    )
    return action_execute(message_id=message.pk, now=max(message.available_at, _now()))


def test_both_withdraw_buttons_ask_first_and_end_withdrawn(login, live_server, people):
    rita = login("rita", TEST_PASSWORD)
    first = start(people, title="Ergonomic chair")
    rita.goto(f"{live_server.url}/requests/{first.pk}/")
    rita.click("#withdraw")
    rita.wait_for_url(f"**/requests/{first.pk}/withdraw/")
    assert WorkflowInstance.objects.get(pk=first.pk).is_active  # asking changed nothing
    assert axe_problems(rita) == []
    rita.fill("#withdraw-comment", "Bought one myself.")
    rita.click("#confirm-withdraw")
    rita.wait_for_url(f"**/requests/{first.pk}/")
    assert rita.inner_text("#status") == "Withdrawn"
    assert " · at " not in rita.inner_text("#status-line")
    assert rita.locator("#withdraw").count() == 0

    # The Withdraw beside Resubmit, on the requester's own task: the same question, the same end.
    second = start(people, title="Standing desk")
    task_decide(
        task_id=second.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="Which model?",
        actor=people["rob"],
        now=_now(),
    )
    own = second.tasks.get(status="claimed")
    rita.goto(f"{live_server.url}/tasks/{own.pk}/")
    assert rita.locator("button[value=RESUBMIT]").count() == 1
    rita.click("#withdraw")
    rita.wait_for_url(f"**/requests/{second.pk}/withdraw/")
    rita.click("#confirm-withdraw")
    rita.wait_for_url(f"**/requests/{second.pk}/")
    assert rita.inner_text("#status") == "Withdrawn"
    for instance in (first, second):
        instance.refresh_from_db()
        assert (instance.state, instance.status) == ("withdrawn", InstanceStatus.WITHDRAWN)


def test_the_request_card_shows_the_form_and_the_history_the_steps_output(
    login, live_server, people
):
    publish(NOTICE_FLOW)
    instance = start(people, key="notice", amount=640)
    assert attempt(instance) == "done"
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/{instance.pk}/")
    heading = rita.get_by_role("heading", name="The request", exact=True)
    card = rita.locator("section.card").filter(has=heading).inner_text()
    assert "Laptop" in card and "640" in card
    assert "Approved" not in card and "message" not in card
    history = rita.inner_text("#timeline")
    assert "The automated step Approved finished" in history
    assert "Message: Your purchase order was approved; finance orders it." in history
    assert "{" not in history


def test_an_automated_step_a_person_can_follow(login, live_server, people):
    """Retrying with its attempt and next time; a permanent failure reviewed at once with what
    to do; Retry as one attempt and its outcome; skipped, and the request says so."""
    publish(ERP_FLOW)
    instance = start(people, key="erp", title="Laptop batch")
    ERP_ANSWERS.append(RuntimeError("the ERP timed out"))
    assert attempt(instance) == "retry"
    rita = login("rita", TEST_PASSWORD)
    rita.goto(f"{live_server.url}/requests/{instance.pk}/")
    status = rita.inner_text("#status-line")
    assert re.search(
        r"Notify ERP: retrying, attempt 2 of 3, next at \d+ \w+ \d{4}, \d\d:\d\d \w+", status
    ), status
    assert "Last attempt: RuntimeError: the ERP timed out" in rita.inner_text("#waiting")

    ERP_ANSWERS.append(
        PermanentError(
            "the ERP refused the order: HTTP 422 Unprocessable Entity",
            advice="fix the vendor number in the ERP, then retry the step",
        )
    )
    assert attempt(instance) == "failed"  # at once, not after the third attempt
    review = Task.objects.get(instance=instance, kind="action_review", status="open")

    oscar = login("oscar", TEST_PASSWORD)
    oscar.goto(f"{live_server.url}/inbox/?tab=queue")
    oscar.click("text=Laptop batch")
    oscar.wait_for_url(f"**/tasks/{review.pk}/")
    assert "What to do: Fix the vendor number in the ERP" in oscar.inner_text("#advice")
    rows = oscar.locator("#attempts tbody tr")
    assert rows.count() == 2
    assert "the ERP timed out" in rows.nth(0).inner_text()
    assert "HTTP 422" in rows.nth(1).inner_text() and "not retried" in rows.nth(1).inner_text()
    assert axe_problems(oscar) == []

    oscar.click("#retry")
    oscar.wait_for_url(f"**/tasks/{review.pk}/")
    assert "Retried by Oscar Ortiz at" in oscar.inner_text("#decision")
    assert "running once more" in oscar.inner_text("#retry-outcome")
    assert axe_problems(oscar) == []

    ERP_ANSWERS.append(RuntimeError("the ERP is still down"))
    assert attempt(instance) == "failed"  # one attempt: its failure is reviewed at once
    oscar.reload()
    assert "That attempt failed too" in oscar.inner_text("#retry-outcome")
    oscar.click("#retry-outcome a")
    again = FailedAction.objects.latest("pk").task
    oscar.wait_for_url(f"**/tasks/{again.pk}/")
    assert oscar.locator("#attempts tbody tr").count() == 3
    oscar.select_option("#skip-event", "onDone")
    oscar.click("#skip")
    oscar.wait_for_url(f"**/requests/{instance.pk}/")
    assert oscar.inner_text("#status-line").startswith(
        "Completed · the step 'Notify ERP' was skipped by Oscar Ortiz"
    )

    # The first review, opened later (from its notification, say), tells how it was handled.
    oscar.goto(f"{live_server.url}/tasks/{review.pk}/")
    assert "Retried by Oscar Ortiz at" in oscar.inner_text("#decision")


def test_admin_reassign_reassigns_or_says_why_not(login, live_server, people):
    instance = start(people, title="Projector")
    task = instance.tasks.get()
    ada = login("ada", TEST_PASSWORD)
    page = f"{live_server.url}/admin/approvals/workflowinstance/{instance.pk}/change/"
    ada.goto(page)
    ada.fill(f"input[name=t{task.pk}-to]", "Mia Manager")
    ada.click(f"#reassign-{task.pk} button")
    ada.wait_for_url(page)
    assert "Task reassigned to Mia Manager." in ada.inner_text(".messagelist")
    successor = instance.tasks.get(status="claimed")
    assert successor.assignee == people["mia"]

    # Staff who may see requests but not reassign their tasks are told why.
    cleo = UserFactory(username="cleo", first_name="Cleo", last_name="Clerk", is_staff=True)
    cleo.user_permissions.add(Permission.objects.get(codename="view_workflowinstance"))
    cleo_page = login("cleo", TEST_PASSWORD)
    cleo_page.goto(page)
    cleo_page.fill(f"input[name=t{successor.pk}-to]", "Rob Reviewer")
    cleo_page.click(f"#reassign-{successor.pk} button")
    cleo_page.wait_for_url(page)
    assert "you may not reassign tasks" in cleo_page.inner_text(".messagelist").lower()
    assert Task.objects.get(pk=successor.pk).assignee == people["mia"]


def test_admin_retry_of_a_failed_step_posts_the_retry(login, live_server, people):
    publish(ERP_FLOW)
    instance = start(people, key="erp")
    ERP_ANSWERS.append(PermanentError("the ERP refused the order", advice="call the ERP team"))
    assert attempt(instance) == "failed"
    failure = FailedAction.objects.get()
    ada = login("ada", TEST_PASSWORD)
    page = f"{live_server.url}/admin/approvals/failedaction/{failure.pk}/change/"
    ada.goto(page)
    assert "What to do: Call the ERP team." in ada.inner_text("#advice")
    ada.click("#retry-step button")
    ada.wait_for_url(page)
    assert "The step runs once more" in ada.inner_text(".messagelist")
    failure.refresh_from_db()
    assert failure.resolution == "retried" and failure.resolved_by == people["ada"]
