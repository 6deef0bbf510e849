"""Several children at once: an invoke in each region of a parallel state, joined by its
onDone when both ended; cancelling the parent cancels every child still running."""

from __future__ import annotations

import pytest

from approvals.models import InstanceStatus, WorkflowInstance
from approvals.services.instances import instance_cancel, instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.subflows.flows import deliver_all, open_task

pytestmark = pytest.mark.django_db


def region(vendor: str) -> dict:
    return {
        "initial": "onboard",
        "states": {
            "onboard": {
                "invoke": {
                    "src": "workflow:vendor-onboarding",
                    "input": {"vendor": vendor},
                    "onDone": "ready",
                    "onError": "ready",
                }
            },
            "ready": {"type": "final"},
        },
    }


@pytest.fixture
def two_vendors(buyer):
    publish(
        {
            "id": "two-vendors",
            "title": "Two vendors",
            "initial": "both",
            "form": {"type": "object", "properties": {"a": {"type": "string"}}},
            "states": {
                "both": {
                    "type": "parallel",
                    "states": {"first": region("a"), "second": region("'Beta'")},
                    "onDone": "done",
                },
                "done": {"type": "final"},
            },
        }
    )
    parent = instance_start(
        definition_key="two-vendors", context={"a": "Alpha"}, actor=buyer, now=NOW
    )
    deliver_all()
    return parent


def children(parent: WorkflowInstance) -> dict[str, WorkflowInstance]:
    return {child.context["vendor"]: child for child in parent.children.all()}


def test_both_children_run_at_once_and_the_parent_joins_when_both_ended(two_vendors, clerk):
    parent = two_vendors
    kids = children(parent)
    assert set(kids) == {"Alpha", "Beta"}
    assert {k.parent_state for k in kids.values()} == {"both.first.onboard", "both.second.onboard"}
    task_decide(task_id=open_task(kids["Alpha"]).pk, event="APPROVE", actor=clerk, now=NOW)
    deliver_all()
    parent.refresh_from_db()
    assert parent.state == "both" and parent.context["onboard"]["request"] == kids["Alpha"].pk
    task_decide(
        task_id=open_task(kids["Beta"]).pk, event="REJECT", actor=clerk, now=NOW, comment="no"
    )
    deliver_all()
    parent.refresh_from_db()
    assert (parent.state, parent.status) == ("done", InstanceStatus.COMPLETED)


def test_cancelling_the_parent_cancels_the_children_still_running(two_vendors, clerk, operator):
    parent = two_vendors
    kids = children(parent)
    task_decide(task_id=open_task(kids["Alpha"]).pk, event="APPROVE", actor=clerk, now=NOW)
    deliver_all()
    instance_cancel(instance_id=parent.pk, actor=operator, reason="stop", now=NOW)
    statuses = {name: WorkflowInstance.objects.get(pk=k.pk).status for name, k in kids.items()}
    assert statuses == {"Alpha": InstanceStatus.COMPLETED, "Beta": InstanceStatus.CANCELLED}
