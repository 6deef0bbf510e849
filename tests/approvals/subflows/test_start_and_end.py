"""A step that starts a child request of another workflow, after commit, and the child's end
taking the parent on (onDone with its output, onError when it does not complete)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.automation.subflows import subflow_execute
from approvals.models import (
    AuditEvent,
    InstanceStatus,
    OutboxMessage,
    OutboxStatus,
    TaskKind,
    WorkflowDefinition,
)
from approvals.outbox.sweep import outbox_sweep
from approvals.services.audit import verify_instances
from approvals.services.automated_steps import failed_action_retry
from approvals.services.definitions import definition_retire
from approvals.services.instances import instance_cancel, instance_start
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


def start_parent(buyer, **context):
    return instance_start(
        definition_key="purchase",
        context={"vendor_name": "Acme", "amount": 120, **context},
        actor=buyer,
        now=NOW,
    )


def test_the_child_starts_after_commit_as_the_parents_requester(
    buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        parent = start_parent(buyer)
    # Nothing is started inside the parent's transaction: a message waits for after commit.
    start = OutboxMessage.objects.get(instance=parent, topic="subflow.start")
    assert start.status == OutboxStatus.PENDING and callbacks
    assert not parent.children.exists()

    assert deliver_all() == ["done"]
    child = child_of(parent)
    assert child.requester == buyer and child.workflow_key == "vendor-onboarding"
    assert child.context == {"vendor": "Acme", "country": "FR"}
    assert (child.parent_state, child.state) == ("onboard", "check")
    started = AuditEvent.objects.get(instance=parent, event="subflow.started")
    assert started.data["child"] == child.pk
    assert started.data["message"].startswith(f"started sub-request #{child.pk}")
    assert AuditEvent.objects.get(instance=child, event="instance.started").data["parent"] == (
        parent.pk
    )
    # A second delivery of the same message starts nothing more.
    start.refresh_from_db()
    assert start.status == OutboxStatus.DELIVERED and deliver_all() == []
    assert parent.children.count() == 1


def test_an_approved_child_hands_its_output_to_on_done(buyer, clerk):
    parent = start_parent(buyer)
    deliver_all()
    child = child_of(parent)
    task_decide(task_id=open_task(child).pk, event="APPROVE", actor=clerk, now=NOW)
    parent.refresh_from_db()
    assert parent.state == "onboard"  # told after the child's commit, not inside it

    assert deliver_all() == ["done"]
    parent.refresh_from_db()
    assert parent.state == "review"
    assert parent.context["onboard"] == {
        "request": child.pk,
        "state": "onboarded",
        "status": "completed",
        "output": {"vendor_id": "V-Acme", "country": "FR"},
    }
    assert parent.context["vendor_id"] == "V-Acme"
    ended = AuditEvent.objects.get(instance=parent, event="subflow.ended")
    assert ended.data["message"] == f"sub-request #{child.pk} ended: completed"
    assert list(verify_instances([parent.pk, child.pk])) == []


@pytest.mark.parametrize("how", ["rejected", "cancelled"])
def test_a_child_that_does_not_complete_takes_on_error(buyer, clerk, operator, how):
    parent = start_parent(buyer)
    deliver_all()
    child = child_of(parent)
    if how == "rejected":
        task_decide(
            task_id=open_task(child).pk, event="REJECT", actor=clerk, now=NOW, comment="no VAT id"
        )
    else:
        instance_cancel(instance_id=child.pk, actor=operator, reason="duplicate", now=NOW)
    deliver_all()
    parent.refresh_from_db()
    assert (parent.state, parent.status) == ("no_vendor", InstanceStatus.REJECTED)
    assert parent.context["onboard"]["status"] == how
    moved = AuditEvent.objects.get(instance=parent, event="transition", to_state="no_vendor")
    assert moved.data["trigger"] == "invoke.onError"
    assert moved.data["data"]["error"] == f"the sub-request #{child.pk} was {how}"


def test_input_the_childs_form_refuses_takes_on_error_with_the_message(buyer):
    # What an expression gives is known when the child starts: here a number for a string.
    invoke = {
        "src": "workflow:vendor-onboarding",
        "input": {"vendor": "amount * 2"},
        "onDone": "review",
        "onError": "no_vendor",
    }
    publish(parent_flow(invoke))
    parent = start_parent(buyer)
    assert deliver_all() == ["failed"]
    parent.refresh_from_db()
    assert parent.state == "no_vendor" and not parent.children.exists()
    failed = AuditEvent.objects.get(instance=parent, event="subflow.failed")
    assert "vendor-onboarding could not start" in failed.data["error"]
    assert "vendor" in failed.data["error"]


def test_a_child_workflow_no_longer_published_takes_on_error(buyer):

    parent = start_parent(buyer)
    child_definition = WorkflowDefinition.objects.get(key="vendor-onboarding")
    definition_retire(definition_id=child_definition.pk, actor=None)
    assert deliver_all() == ["failed"]
    parent.refresh_from_db()
    assert parent.state == "no_vendor"
    assert (
        "no published workflow vendor-onboarding"
        in (AuditEvent.objects.get(instance=parent, event="subflow.failed").data["error"])
    )


def test_the_child_starts_on_the_pinned_version(buyer):

    child_v2 = child_flow(title="Vendor onboarding v2")
    publish(child_v2)
    assert WorkflowDefinition.objects.filter(key="vendor-onboarding").count() == 2
    invoke = {
        "src": "workflow:vendor-onboarding@1",
        "input": {"vendor": "vendor_name + ' Ltd'"},
        "onDone": "review",
        "onError": "no_vendor",
    }
    publish(parent_flow(invoke))
    parent = start_parent(buyer)
    deliver_all()
    child = child_of(parent)
    assert child.definition.version == 1 and child.context["vendor"] == "Acme Ltd"


def test_a_worker_that_died_mid_start_is_replaced_by_the_sweep(buyer, settings):
    """The delivery claimed the start message and never finished: once its lease ran out the
    sweep sends it again, and the child is started once."""
    settings.ACTION_LEASE_SECONDS = 60
    settings.OUTBOX_SWEEP_SECONDS = 30
    parent = start_parent(buyer)
    start = OutboxMessage.objects.get(instance=parent, topic="subflow.start")
    OutboxMessage.objects.filter(pk=start.pk).update(
        attempts=1, available_at=NOW + timedelta(seconds=60)
    )
    assert outbox_sweep(now=NOW + timedelta(seconds=61))["subflows"] == 0
    assert outbox_sweep(now=NOW + timedelta(seconds=91))["subflows"] == 1
    assert subflow_execute(message_id=start.pk, now=NOW + timedelta(seconds=91)) == "done"
    assert subflow_execute(message_id=start.pk, now=NOW + timedelta(seconds=200)) == "not due"
    assert parent.children.count() == 1


def test_no_on_done_guard_holding_hands_the_step_to_an_operator_whose_retry_starts_a_new_child(
    buyer, clerk, operator
):
    invoke = {
        "src": "workflow:vendor-onboarding",
        "input": {"vendor": "vendor_name"},
        "onDone": {"target": "review", "guard": "event.output.country == 'DE'"},
        "onError": "no_vendor",
    }
    publish(parent_flow(invoke))
    parent = start_parent(buyer)
    deliver_all()
    first = child_of(parent)
    task_decide(task_id=open_task(first).pk, event="APPROVE", actor=clerk, now=NOW)
    deliver_all()
    parent.refresh_from_db()
    assert parent.state == "onboard"
    review = open_task(parent)
    assert review.kind == TaskKind.ACTION_REVIEW
    failed_action_retry(task_id=review.pk, actor=operator, now=NOW)
    deliver_all()
    assert parent.children.count() == 2
    assert parent.children.exclude(pk=first.pk).get().status == InstanceStatus.ACTIVE
