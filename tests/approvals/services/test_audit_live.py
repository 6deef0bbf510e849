"""Verifying the audit trail while people decide: a busy system raises no false alarm, and
real tampering is still named (PostgreSQL: real concurrent transactions)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from approvals.models import WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

REQUESTS = 6
ROUNDS = 4


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions are real only on PostgreSQL")


def _delete_newest_event(instance: WorkflowInstance) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        # Only a superuser can switch the append-only trigger off, as an attacker would.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM approvals_auditevent WHERE instance_id = %s AND seq = %s",
            [instance.pk, instance.audit_seq],
        )


def test_verifying_while_people_decide_raises_no_false_alarm():
    publish(review_flow())
    rita = UserFactory(username="rita")
    rob = UserFactory(username="rob", groups=[GroupFactory(name="manager")])
    busy = [
        instance_start(
            definition_key="review", context={"title": f"r{n}", "amount": 1}, actor=rita, now=NOW
        )
        for n in range(REQUESTS)
    ]
    tampered = instance_start(
        definition_key="review", context={"title": "t", "amount": 1}, actor=rita, now=NOW
    )
    _delete_newest_event(tampered)

    verifying = threading.Event()
    failures: list[BaseException] = []

    def decide() -> None:
        # Each round sends every request back for changes and resubmits it: six audit events
        # per request per round, committed while the main thread verifies.
        try:
            verifying.wait(timeout=60)
            for _ in range(ROUNDS):
                for instance in busy:
                    review = instance.tasks.get(status__in=["open", "claimed"])
                    task_decide(
                        task_id=review.pk,
                        event="REQUEST_CHANGES",
                        comment="more detail",
                        actor=rob,
                        now=NOW,
                    )
                    changes = instance.tasks.get(status__in=["open", "claimed"])
                    task_decide(task_id=changes.pk, event="RESUBMIT", actor=rita, now=NOW)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    decider = threading.Thread(target=decide)
    decider.start()
    passes = 0
    reported: list[str] = []
    everyone = WorkflowInstance.objects.order_by("pk")
    try:
        while True:
            still_deciding = decider.is_alive()
            found = list(verify_instances(everyone))
            verifying.set()
            passes += 1
            reported += [str(b) for b in found if b.instance_id != tampered.pk]
            # Real tampering is named on every pass, however busy the others are.
            assert [b.instance_id for b in found if b.instance_id == tampered.pk] == [tampered.pk]
            if not still_deciding:
                break
    finally:
        verifying.set()
        decider.join(timeout=120)

    assert failures == []
    assert passes > 1
    assert reported == []
    for instance in busy:
        instance.refresh_from_db()
        assert instance.audit_seq == 2 + 6 * ROUNDS
