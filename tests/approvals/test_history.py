"""A request's history in words: conditions as the definition says them, the engine's work
credited to nobody, people by name."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import OutOfOffice
from approvals.history import timeline
from approvals.models import Task
from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW, director_flow, multi_flow, publish, review_flow, routed_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def lines(instance) -> list[str]:
    return [f"{e.actor} {e.text}".strip() for e in timeline(instance)]


def open_task(instance) -> Task:
    return Task.objects.get(instance=instance, status__in=["open", "claimed"])


def test_a_routed_decision_says_why_and_credits_the_engine(requester, reviewer):
    publish(director_flow())
    instance = instance_start(
        definition_key="review",
        context={"title": "Laptop batch", "amount": 12000},
        actor=requester,
        now=NOW,
    )
    task_decide(task_id=open_task(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    said = lines(instance)
    assert said == [
        "Rita Requester submitted the request",
        "A task for a manager was opened",
        "Rob Reviewer approved",
        "Sent to Director approval because the amount is 10,000 or more",
        "A task for a director was opened",
    ]
    assert [e.actor for e in timeline(instance)][1] == ""  # not the requester


def test_a_simple_guard_without_description_is_read_in_words(requester):
    publish(routed_flow())
    instance = instance_start(
        definition_key="routed", context={"amount": 300}, actor=requester, now=NOW
    )
    assert "Sent to Finance because the amount is under 1,000" in lines(instance)
    big = instance_start(
        definition_key="routed", context={"amount": 3000}, actor=requester, now=NOW
    )
    assert "Sent to Manager" in lines(big)
    for line in lines(big):
        assert "always" not in line and "→" not in line and "amount <" not in line


def test_a_decision_on_behalf_names_the_absent_person(requester, reviewer):
    publish(review_flow())
    cover = UserFactory(username="carl", first_name="Carl", last_name="Cover")
    instance = instance_start(
        definition_key="review", context={"title": "Chair", "amount": 10}, actor=requester, now=NOW
    )
    task = open_task(instance)
    task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    OutOfOffice.objects.create(
        user=reviewer,
        substitute=cover,
        starts_on=NOW.date() - timedelta(days=1),
        ends_on=NOW.date() + timedelta(days=400),
    )
    task_decide(task_id=task.pk, event="REJECT", comment="No.", actor=cover, now=NOW)
    assert "Carl Cover rejected on behalf of Rob Reviewer" in lines(instance)
    assert "The request was rejected" in lines(instance)


def test_quorum_progress_is_counted(requester):
    security = GroupFactory(name="security")
    sam = UserFactory(username="sam", first_name="Sam", last_name="Silva", groups=[security])
    tina = UserFactory(username="tina", first_name="Tina", last_name="Tran", groups=[security])
    publish(multi_flow({"quorum": 2}, ["security"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    first, second = Task.objects.filter(instance=instance).order_by("pk")
    task_decide(task_id=first.pk, event="APPROVE", actor=sam, now=NOW)
    task_decide(task_id=second.pk, event="APPROVE", actor=tina, now=NOW)
    said = lines(instance)
    assert "Sam Silva approved; 1 of 2" in said
    assert "Tina Tran approved; 2 of 2" in said
    assert said.count("A task for security was opened") == 2
