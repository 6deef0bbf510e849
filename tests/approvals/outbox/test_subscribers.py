"""Outbox subscribers run in the transaction of the change that wrote the messages."""

from __future__ import annotations

import pytest
from django.db import transaction

from approvals.models import OutboxMessage, WorkflowInstance
from approvals.outbox import subscribers
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(monkeypatch):
    """Record what a subscriber to task.created / task.decided and one to every topic get."""
    monkeypatch.setattr(subscribers, "_subscribers", subscribers.defaultdict(list))
    batches: dict[str, list[list[OutboxMessage]]] = {"tasks": [], "all": []}
    subscribers.subscribe("task.created", "task.decided")(batches["tasks"].append)
    subscribers.subscribe(subscribers.ANY_TOPIC)(batches["all"].append)
    return batches


def test_each_subscriber_gets_one_batch_of_saved_messages_per_change(received, requester, reviewer):
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "Chair", "amount": 90}, actor=requester, now=NOW
    )
    assert [[m.topic for m in batch] for batch in received["tasks"]] == [["task.created"]]
    assert [[m.topic for m in batch] for batch in received["all"]] == [
        ["instance.started", "task.created"]
    ]
    assert all(m.pk for m in received["all"][0])

    task = instance.tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert [m.topic for m in received["tasks"][1]] == ["task.decided"]
    assert received["tasks"][1][0].payload["task"] == task.pk


def test_a_failing_subscriber_rolls_the_change_back(monkeypatch, requester):
    monkeypatch.setattr(subscribers, "_subscribers", subscribers.defaultdict(list))
    publish(review_flow())

    @subscribers.subscribe("instance.started")
    def broken(messages):
        raise RuntimeError("subscriber failed")

    with pytest.raises(RuntimeError), transaction.atomic():
        instance_start(
            definition_key="review",
            context={"title": "Desk", "amount": 1},
            actor=requester,
            now=NOW,
        )
    assert not WorkflowInstance.objects.exists()
    assert not OutboxMessage.objects.exists()


def test_subscribe_needs_a_topic():
    with pytest.raises(ValueError, match="at least one topic"):
        subscribers.subscribe()
