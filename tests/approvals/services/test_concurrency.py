"""Several people deciding the same task at the same moment, on real PostgreSQL row locks."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from approvals.models import Decision, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.errors import AlreadyDecided
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

DECIDERS = 6


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")


def _race(task_id: int, users: list, event: str) -> tuple[list, list]:
    barrier = threading.Barrier(len(users))
    won: list = []
    refused: list = []

    def decide(user) -> None:
        try:
            barrier.wait()
            result = task_decide(task_id=task_id, event=event, comment="race", actor=user, now=NOW)
            won.append((user, result))
        except AlreadyDecided as exc:
            refused.append((user, exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return won, refused


@pytest.mark.parametrize("event", ["APPROVE", "REJECT"])
def test_exactly_one_of_several_simultaneous_decisions_wins(event):
    publish(review_flow())
    requester = UserFactory(username="rita")
    managers = [
        UserFactory(username=f"m{i}", groups=[GroupFactory(name="manager")])
        for i in range(DECIDERS)
    ]
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task_id = instance.tasks.get().pk

    won, refused = _race(task_id, managers, event)

    assert len(won) == 1, won
    assert len(refused) == DECIDERS - 1
    winner = won[0][0]
    for _, exc in refused:
        assert f"already decided by {winner}" in exc.message
    instance = WorkflowInstance.objects.get(pk=instance.pk)
    assert instance.state == ("approved" if event == "APPROVE" else "rejected")
    assert Decision.objects.count() == 1
    assert instance.audit_events.filter(event="transition").count() == 1
    assert list(verify_instances([instance])) == []
