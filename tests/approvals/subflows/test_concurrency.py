"""A parent cancelled while its child is being decided, at the same moment, on real
PostgreSQL row locks: no deadlock, the parent ends cancelled, the child either completed
first (its end then moves nothing) or was cancelled first (the decision is refused)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections

from approvals.models import InstanceStatus, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.errors import WorkflowError
from approvals.services.instances import instance_cancel, instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.subflows.flows import child_flow, deliver_all, open_task, parent_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

ROUNDS = 4


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")


def _race(*actions) -> tuple[list[str], list[BaseException]]:
    """Run the actions at the same moment, each in its own thread and connection: what the
    services refused, and anything else raised (a deadlock would land there)."""
    barrier = threading.Barrier(len(actions))
    refused: list[str] = []
    errors: list[BaseException] = []

    def run(action) -> None:
        try:
            barrier.wait()
            action()
        except WorkflowError as exc:
            refused.append(exc.message)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return refused, errors


def test_cancelling_a_parent_while_its_child_is_decided():
    GroupFactory(name="manager")
    GroupFactory(name="operator")
    clerk = UserFactory(username="pat", groups=[GroupFactory(name="procurement")])
    operator = UserFactory(username="opal")
    operator.user_permissions.add(Permission.objects.get(codename="cancel_instance"))
    buyer = UserFactory(username="bea")
    publish(child_flow())
    publish(parent_flow())
    for _ in range(ROUNDS):
        parent = instance_start(
            definition_key="purchase",
            context={"vendor_name": "Acme", "amount": 1},
            actor=buyer,
            now=NOW,
        )
        deliver_all()
        child = WorkflowInstance.objects.get(parent=parent)
        task_id = open_task(child).pk
        refused, errors = _race(
            lambda p=parent.pk: instance_cancel(
                instance_id=p, actor=operator, reason="race", now=NOW
            ),
            lambda t=task_id: task_decide(task_id=t, event="APPROVE", actor=clerk, now=NOW),
        )
        assert errors == []
        assert set(deliver_all()) <= {"not due"}
        parent.refresh_from_db()
        child.refresh_from_db()
        assert parent.status == InstanceStatus.CANCELLED
        assert child.status in (InstanceStatus.COMPLETED, InstanceStatus.CANCELLED)
        assert (child.status == InstanceStatus.CANCELLED) == bool(refused), refused
        assert parent.state == "onboard"  # the child's end moved nothing
        assert list(verify_instances([parent.pk, child.pk])) == []
