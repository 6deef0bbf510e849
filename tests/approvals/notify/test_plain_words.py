"""Notifications say what happened, by name, in the definition's words; a task's are read
once it closes; a burst reads as one; two roles, two tasks, two notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import OutOfOffice
from approvals.models import Notification, NotificationKind, Task
from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import (
    NOW,
    director_flow,
    multi_flow,
    parallel_flow,
    publish,
    review_flow,
)
from tests.approvals.notify.helpers import told
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def purchase_flow() -> dict:
    flow = director_flow(description=None)
    flow["title"] = "Purchase order"
    return flow


def start(requester, title="Laptop batch", amount=12000, key="review"):
    return instance_start(
        definition_key=key, context={"title": title, "amount": amount}, actor=requester, now=NOW
    )


def live(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def test_an_approval_says_which_step_and_what_it_waits_on_now(requester, reviewer):
    publish(purchase_flow())
    instance = start(requester)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert told(requester) == [
        (
            "decision",
            "Rob Reviewer approved the Manager approval step of “Laptop batch”; "
            "it now waits on a director",
        )
    ]
    task_decide(
        task_id=live(instance).pk,
        event="APPROVE",
        actor=UserFactory(
            username="dora",
            first_name="Dora",
            last_name="Director",
            groups=[GroupFactory(name="director")],
        ),
        now=NOW,
    )
    assert told(requester)[-1] == (
        "completed",
        "Dora Director approved the Director approval step of “Laptop batch”; "
        "your request was approved",
    )


def test_your_request_was_approved_only_when_it_is(requester, reviewer):
    publish(purchase_flow())
    instance = start(requester)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert "was approved" not in told(requester)[0][1]


def test_no_raw_event_names(requester):
    warehouse = GroupFactory(name="warehouse")
    walt = UserFactory(username="walt", first_name="Walt", last_name="Ware", groups=[warehouse])
    publish(parallel_flow())
    instance = instance_start(definition_key="fulfil", context={}, actor=requester, now=NOW)
    task_decide(task_id=live(instance).pk, event="PICKED", actor=walt, now=NOW)
    ((kind, text),) = told(requester)
    assert kind == "decision"
    assert "PICKED" not in text and "chose" not in text
    assert text.startswith("Walt Ware answered “Picked” on the Picking step of")


def test_a_decision_on_behalf_says_so(requester, reviewer):
    publish(purchase_flow())
    cover = UserFactory(username="carl", first_name="Carl", last_name="Cover")
    instance = start(requester, amount=50)
    task_claim(task_id=live(instance).pk, actor=reviewer, now=NOW)
    OutOfOffice.objects.create(
        user=reviewer,
        substitute=cover,
        starts_on=NOW.date() - timedelta(days=1),
        ends_on=NOW.date() + timedelta(days=400),
    )
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=cover, now=NOW)
    assert told(requester)[-1] == (
        "completed",
        "Carl Cover approved the Manager approval step of “Laptop batch” on behalf of "
        "Rob Reviewer; your request was approved",
    )


def test_people_by_name_not_username(requester, reviewer, reviewer2):
    publish(review_flow())
    instance = start(requester)
    task_claim(task_id=live(instance).pk, actor=reviewer, now=NOW)
    text = told(reviewer2)[-1][1]
    assert text.startswith("Rob Reviewer took") and "rob " not in text


def test_a_task_notification_is_read_once_the_task_closes(requester, reviewer, reviewer2):
    publish(review_flow())
    instance = start(requester)
    note = Notification.objects.get(recipient=reviewer2, kind=NotificationKind.TASK_NEW)
    task_claim(task_id=live(instance).pk, actor=reviewer, now=NOW)
    note.refresh_from_db()
    assert note.read_at is None  # claimed, not closed
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert set(
        Notification.objects.filter(
            recipient__in=[reviewer, reviewer2],
            kind__in=[NotificationKind.TASK_NEW, NotificationKind.TASK_CLAIMED],
        ).values_list("read_at", flat=True)
    ) == {NOW}
    # The requester's news about the decision stays unread.
    assert Notification.objects.get(recipient=requester).read_at is None


def test_a_new_task_stays_unread_while_open(requester, reviewer):
    publish(purchase_flow())
    dora = UserFactory(username="dora", groups=[GroupFactory(name="director")])
    instance = start(requester)
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert Notification.objects.get(recipient=reviewer).read_at == NOW
    assert Notification.objects.get(recipient=dora, kind="task_new").read_at is None


def test_two_roles_two_tasks_in_one_step_are_both_told(requester):
    both = UserFactory(
        username="bea",
        first_name="Bea",
        last_name="Both",
        groups=[GroupFactory(name="manager"), GroupFactory(name="security")],
    )
    publish(multi_flow("all", ["manager", "security"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    notes = told(both)
    assert [k for k, _ in notes] == ["task_new", "task_new"]
    assert {t.rsplit("(", 1)[1] for _, t in notes} == {"as manager)", "as security)"}
    tasks = set(Notification.objects.filter(recipient=both).values_list("task_id", flat=True))
    assert tasks == set(instance.tasks.values_list("pk", flat=True))


def test_a_burst_reads_as_one_row(client: Client, requester, reviewer, outsider):
    publish(review_flow())
    for n in range(3):
        start(requester, title=f"Chair {n}")
    client.force_login(reviewer)
    html = client.get("/notifications/").content.decode()
    assert "3 new tasks in Review" in html
    for n in range(3):
        assert f"New task: Review for “Chair {n}”" in html  # each one inside the group
    client.force_login(outsider)
    assert "new tasks" not in client.get("/notifications/").content.decode()


def test_a_burst_of_one_is_its_own_text(client: Client, requester, reviewer):
    publish(review_flow())
    start(requester, title="Chair")
    client.force_login(reviewer)
    html = client.get("/notifications/").content.decode()
    assert "1 new tasks" not in html and "New task: Review for “Chair”" in html
