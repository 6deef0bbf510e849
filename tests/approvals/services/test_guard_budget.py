"""A guard over its evaluation budget refuses the decision, changes nothing and releases the
request; the SLA sweep goes on past a timer whose guard is over budget."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from approvals.models import AuditEvent, Task, TaskStatus, Timer, WorkflowInstance
from approvals.services.errors import Conflict
from approvals.services.instances import instance_start
from approvals.services.sla import sla_sweep
from approvals.services.task_work import task_decide
from tests.approvals.flows import EXPENSIVE, NOW, guarded_flow, publish

pytestmark = pytest.mark.django_db


def timed_flow() -> dict[str, Any]:
    return {
        "id": "timed",
        "title": "Timed",
        "initial": "waiting",
        "form": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        },
        "states": {
            "waiting": {
                "after": {"PT1H": [{"target": "late", "guard": EXPENSIVE}, {"target": "late"}]},
                "on": {"DONE": "late"},
            },
            "late": {"type": "final"},
        },
    }


def start(key: str, requester, items: int) -> WorkflowInstance:
    return instance_start(
        definition_key=key, context={"items": list(range(items))}, actor=requester, now=NOW
    )


def test_a_decision_whose_guard_is_over_budget_is_refused_and_changes_nothing(
    requester, reviewer, caplog
):
    publish(guarded_flow())
    instance = start("guarded", requester, 40)
    task = instance.tasks.get()
    events_before = AuditEvent.objects.filter(instance=instance).count()

    with pytest.raises(Conflict) as caught:
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)

    message = caught.value.message
    assert message.startswith(f"guard '{EXPENSIVE}' of review (APPROVE) failed: ")
    assert "evaluation budget exceeded" in message
    assert "nothing was changed" in message
    assert caught.value.current_state == "review"
    instance.refresh_from_db()
    assert (instance.state, instance.version) == ("review", 1)
    assert Task.objects.get(pk=task.pk).status == TaskStatus.OPEN
    assert AuditEvent.objects.filter(instance=instance).count() == events_before
    assert f"request {instance.pk} (guarded version 1)" in caplog.text
    # The same guard within its budget lets the decision through.
    small = start("guarded", requester, 3)
    decided = task_decide(task_id=small.tasks.get().pk, event="APPROVE", actor=reviewer, now=NOW)
    assert decided.instance.state == "approved"


def test_after_the_refusal_the_request_is_free_for_the_next_decision(requester, reviewer):
    publish(guarded_flow())
    instance = start("guarded", requester, 40)
    task = instance.tasks.get()
    with pytest.raises(Conflict):
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    if connection.vendor == "postgresql":
        with transaction.atomic():
            # NOWAIT: an error, not a wait, if any transaction still held the row.
            WorkflowInstance.objects.select_for_update(nowait=True).get(pk=instance.pk)
    result = task_decide(
        task_id=task.pk, event="REJECT", comment="Too many items.", actor=reviewer, now=NOW
    )
    assert result.instance.state == "rejected"


def test_the_sweep_goes_on_past_a_timer_whose_guard_is_over_budget(requester):
    publish(timed_flow())
    stuck = start("timed", requester, 40)
    fine = start("timed", requester, 2)
    later = NOW + timedelta(hours=2)

    result = sla_sweep(now=later)

    fine.refresh_from_db()
    assert fine.state == "late"
    stuck.refresh_from_db()
    assert (stuck.state, stuck.status) == ("waiting", "active")
    timer = Timer.objects.get(instance=stuck)
    assert timer.fired_at == later  # it fired once; its guard's failure is on the record
    failed = AuditEvent.objects.get(instance=stuck, event="timer.failed")
    assert failed.channel == "sla" and failed.from_state == "waiting"
    assert failed.data["after"] == "PT1H"
    assert "evaluation budget exceeded" in failed.data["error"]
    assert result.timers_fired == 1 and result.timers_failed == 1
    # The next sweep does not try it again, and the request still takes its other ways on.
    assert sla_sweep(now=later + timedelta(hours=1)).total == 0
