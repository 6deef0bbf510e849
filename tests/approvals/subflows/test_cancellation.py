"""Cancelling or withdrawing a parent cancels its live sub-requests, and theirs, each audited
with the cause; `cancel_children: false` leaves them running."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent, InstanceStatus, OutboxMessage, WorkflowInstance
from approvals.services.audit import verify_instances
from approvals.services.instances import (
    instance_cancel,
    instance_send_event,
    instance_start,
    instance_withdraw,
)
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.subflows.flows import (
    child_flow,
    child_of,
    deliver_all,
    open_task,
    parent_flow,
)

pytestmark = pytest.mark.django_db


def start_parent(buyer) -> WorkflowInstance:
    parent = instance_start(
        definition_key="purchase",
        context={"vendor_name": "Acme", "amount": 120},
        actor=buyer,
        now=NOW,
    )
    deliver_all()
    return parent


def cancellation_of(instance: WorkflowInstance) -> AuditEvent:
    return AuditEvent.objects.get(instance=instance, event="instance.cancelled")


def test_cancelling_the_parent_cancels_the_child_with_the_cause(buyer, operator):
    parent = start_parent(buyer)
    child = child_of(parent)
    instance_cancel(instance_id=parent.pk, actor=operator, reason="budget cut", now=NOW)
    child.refresh_from_db()
    assert child.status == InstanceStatus.CANCELLED
    assert open_task_count(child) == 0
    event = cancellation_of(child)
    assert event.actor == operator
    assert (
        event.data["reason"] == f"cancelled because its parent request #{parent.pk} was cancelled"
    )
    assert event.data["parent"] == parent.pk
    on_parent = AuditEvent.objects.get(instance=parent, event="subflow.cancelled")
    assert on_parent.data["child"] == child.pk
    # The parent is not told of an end it caused.
    assert not OutboxMessage.objects.filter(instance=child, topic="subflow.ended").exists()
    assert deliver_all() == []
    assert list(verify_instances([parent.pk, child.pk])) == []


def open_task_count(instance: WorkflowInstance) -> int:
    return instance.tasks.filter(status__in=("open", "claimed")).count()


def test_withdrawing_the_parent_cancels_the_child(buyer):
    parent = start_parent(buyer)
    child = child_of(parent)
    instance_withdraw(instance_id=parent.pk, actor=buyer, now=NOW)
    child.refresh_from_db()
    parent.refresh_from_db()
    assert (parent.status, child.status) == (InstanceStatus.WITHDRAWN, InstanceStatus.CANCELLED)
    assert "was withdrawn" in cancellation_of(child).data["reason"]


def test_leaving_the_step_by_an_event_cancels_the_child(buyer, operator):
    parent = start_parent(buyer)
    child = child_of(parent)
    instance_send_event(instance_id=parent.pk, event="CANCEL", actor=operator, now=NOW)
    child.refresh_from_db()
    assert child.status == InstanceStatus.CANCELLED
    assert "left the step 'Onboard'" in cancellation_of(child).data["reason"]


def test_cancellation_reaches_grandchildren(buyer, operator):
    """purchase → vendor-onboarding → kyc: cancelling the purchase cancels both below."""
    publish(
        {
            "id": "kyc",
            "title": "KYC",
            "initial": "check",
            "form": {"type": "object", "properties": {"name": {"type": "string"}}},
            "states": {
                "check": {
                    "meta": {"task": {"roles": ["procurement"]}},
                    "on": {"APPROVE": "ok"},
                },
                "ok": {"type": "final"},
            },
        }
    )
    deep = child_flow()
    deep["initial"] = "kyc"
    deep["states"]["kyc"] = {
        "invoke": {
            "src": "workflow:kyc",
            "input": {"name": "vendor"},
            "onDone": "check",
            "onError": "refused",
        }
    }
    publish(deep)
    parent = start_parent(buyer)
    child = child_of(parent)
    grandchild = child_of(child)
    assert child.state == "kyc" and grandchild.state == "check"

    instance_cancel(instance_id=parent.pk, actor=operator, reason="budget cut", now=NOW)
    for instance in (child, grandchild):
        instance.refresh_from_db()
        assert instance.status == InstanceStatus.CANCELLED
    assert f"parent request #{child.pk} was cancelled" in cancellation_of(grandchild).data["reason"]
    assert AuditEvent.objects.filter(instance=child, event="subflow.cancelled").count() == 1
    assert deliver_all() == []
    assert list(verify_instances([parent.pk, child.pk, grandchild.pk])) == []


def test_cancel_children_false_leaves_the_child_running(buyer, clerk, operator):
    invoke = {
        "src": "workflow:vendor-onboarding",
        "input": {"vendor": "vendor_name"},
        "cancel_children": False,
        "onDone": "review",
        "onError": "no_vendor",
    }
    publish(parent_flow(invoke))
    parent = start_parent(buyer)
    child = child_of(parent)
    instance_cancel(instance_id=parent.pk, actor=operator, reason="budget cut", now=NOW)
    child.refresh_from_db()
    assert child.status == InstanceStatus.ACTIVE
    # Its end, later, finds the parent gone from the step: nothing moves.
    task_decide(task_id=open_task(child).pk, event="APPROVE", actor=clerk, now=NOW)
    assert deliver_all() == ["not due"]
    parent.refresh_from_db()
    assert parent.status == InstanceStatus.CANCELLED
    assert not AuditEvent.objects.filter(instance=parent, event="subflow.ended").exists()


def test_a_parent_cancelled_before_its_child_started_starts_none(buyer, operator):
    parent = instance_start(
        definition_key="purchase",
        context={"vendor_name": "Acme", "amount": 120},
        actor=buyer,
        now=NOW,
    )
    instance_cancel(instance_id=parent.pk, actor=operator, reason="typo", now=NOW)
    assert deliver_all() == ["not due"]
    assert not parent.children.exists()
