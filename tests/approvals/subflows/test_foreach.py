"""`foreach`: one child per item of a context list, at most `limit` running at once, joined
when every child completed; the first that does not complete takes onError."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import InstanceStatus, WorkflowInstance
from approvals.services.automated_steps import failed_action_retry
from approvals.services.definitions import definition_problems
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.subflows.flows import deliver_all, open_task, parent_flow

pytestmark = pytest.mark.django_db


def fan_out(limit: Any = 2, vendors_type: Any = "array", **changes: Any) -> dict[str, Any]:
    flow = parent_flow(
        {
            "src": "workflow:vendor-onboarding",
            "foreach": "vendors",
            "limit": limit,
            "input": {"vendor": "item.name", "country": "index == 0 ? 'DE' : 'FR'"},
            "onDone": {
                "target": "review",
                "assign": {"ids": "event.results.map(r, r.output.vendor_id)"},
            },
            "onError": "no_vendor",
            **changes,
        }
    )
    vendors: dict[str, Any] = {"type": vendors_type} if vendors_type else {}
    flow["form"] = {
        "type": "object",
        "properties": {"vendors": vendors, "amount": {"type": "number"}},
    }
    return flow


def start(buyer, vendors: Any) -> WorkflowInstance:
    return instance_start(
        definition_key="purchase", context={"vendors": vendors, "amount": 1}, actor=buyer, now=NOW
    )


def live(parent: WorkflowInstance) -> list[WorkflowInstance]:
    return list(parent.children.filter(status=InstanceStatus.ACTIVE).order_by("parent_index"))


def test_at_most_limit_children_run_and_the_parent_joins_when_all_completed(buyer, clerk):
    publish(fan_out())
    parent = start(buyer, [{"name": "A"}, {"name": "B"}, {"name": "C"}])
    deliver_all()
    running = live(parent)
    assert [c.context["vendor"] for c in running] == ["A", "B"]
    assert running[0].context["country"] == "DE" and running[1].context["country"] == "FR"
    while running:
        assert len(running) <= 2
        task_decide(task_id=open_task(running[-1]).pk, event="APPROVE", actor=clerk, now=NOW)
        deliver_all()
        running = live(parent)
    parent.refresh_from_db()
    assert parent.state == "review"
    assert parent.children.count() == 3
    results = parent.context["onboard"]["results"]
    assert [r["output"]["vendor_id"] for r in results] == ["V-A", "V-B", "V-C"]
    assert parent.context["ids"] == ["V-A", "V-B", "V-C"]
    assert [c.parent_index for c in parent.children.order_by("pk")] == [0, 1, 2]
    assert parent.context["onboard"]["started"] == 3


def test_an_empty_list_is_done_at_once(buyer):
    publish(fan_out())
    parent = start(buyer, [])
    deliver_all()
    parent.refresh_from_db()
    assert parent.state == "review" and not parent.children.exists()


def test_the_first_child_not_completed_takes_on_error_and_cancels_the_others(buyer, clerk):
    publish(fan_out())
    parent = start(buyer, [{"name": "A"}, {"name": "B"}, {"name": "C"}])
    deliver_all()
    first, second = live(parent)
    task_decide(task_id=open_task(first).pk, event="REJECT", actor=clerk, now=NOW, comment="no")
    deliver_all()
    parent.refresh_from_db()
    second.refresh_from_db()
    assert parent.state == "no_vendor"
    assert second.status == InstanceStatus.CANCELLED
    assert parent.children.count() == 2  # C never started


def test_a_foreach_over_something_not_a_list_takes_on_error_with_the_message(buyer):
    publish(fan_out(vendors_type=None))
    parent = start(buyer, "A, B")
    assert deliver_all() == ["failed"]
    parent.refresh_from_db()
    assert parent.state == "no_vendor"
    failed = parent.audit_events.get(event="subflow.failed")
    assert failed.data["error"] == "foreach: the field vendors holds text, not a list"


def test_foreach_and_limit_are_checked_at_publish(buyer):
    found = definition_problems(fan_out(vendors_type="string"))
    assert any("*vendors* is string in the form, not a list" in p for p in found)
    (limit,) = definition_problems(fan_out(limit=0))
    assert "expected a whole number from 1, got 0" in limit
    assert limit.endswith("(states.onboard.invoke.limit)")
    flow = fan_out()
    del flow["states"]["onboard"]["invoke"]["foreach"]
    assert any("limit is for foreach" in p for p in definition_problems(flow))


def test_an_operators_retry_runs_the_whole_list_again(buyer, clerk, operator):
    """onDone's guard does not hold: the step goes to review; Retry starts every item anew."""
    publish(fan_out(limit=1, onDone={"target": "review", "guard": "size(event.results) > 5"}))
    parent = start(buyer, [{"name": "A"}, {"name": "B"}])
    deliver_all()
    for _ in range(2):
        (child,) = live(parent)
        task_decide(task_id=open_task(child).pk, event="APPROVE", actor=clerk, now=NOW)
        deliver_all()
    review = open_task(parent)
    failed_action_retry(task_id=review.pk, actor=operator, now=NOW)
    deliver_all()
    (again,) = live(parent)
    assert again.context["vendor"] == "A" and again.parent_index == 0
    task_decide(task_id=open_task(again).pk, event="APPROVE", actor=clerk, now=NOW)
    deliver_all()
    (last,) = live(parent)
    assert last.context["vendor"] == "B"
    assert parent.children.count() == 4
