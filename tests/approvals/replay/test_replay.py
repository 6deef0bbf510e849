"""The replay (approvals/replay.py) read from the trail alone: after every service call, the
snapshot at the trail's last sequence number equals the request as the database holds it then;
and every sequence number of a parallel flow has its known picture."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import LIVE_TASK_STATUSES, WorkflowInstance
from approvals.replay import NoSuchPoint, snapshot_at
from approvals.services.instances import instance_send_event, instance_start
from approvals.services.sla import task_escalate_overdue
from approvals.services.task_work import task_claim, task_decide, task_delegate
from tests.approvals.flows import NOW, parallel_flow, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def present(instance: WorkflowInstance) -> dict:
    """What the database says now, in the snapshot's terms."""
    instance.refresh_from_db()
    branches = list(
        instance.branches.filter(closed_at__isnull=True).values_list("state", flat=True)
    )
    tasks = [
        (t.pk, t.state, t.assignee.username if t.assignee else None)
        for t in instance.tasks.filter(status__in=LIVE_TASK_STATUSES).order_by("pk")
    ]
    return {
        "states": sorted([*branches, instance.state]),
        "tasks": tasks,
        "context": instance.context,
    }


def replayed(instance: WorkflowInstance, seq: int) -> dict:
    snap = snapshot_at(instance, seq)
    return {
        "states": sorted(snap.states),
        "tasks": [(t.id, t.state, t.assignee) for t in snap.open_tasks],
        "context": snap.context,
    }


class Recorder:
    """After each call: the request's last sequence number and how it was."""

    def __init__(self, instance: WorkflowInstance) -> None:
        self.instance = instance
        self.seen: list[tuple[int, dict]] = []
        self.note()

    def note(self) -> None:
        picture = present(self.instance)
        self.seen.append((self.instance.audit_seq, picture))

    def check(self) -> None:
        for seq, picture in self.seen:
            assert replayed(self.instance, seq) == picture, seq


def test_loop_delegation_escalation_and_edits(requester, reviewer, reviewer2):
    publish(review_flow(sla="PT1H", escalate_to=["director"]))
    director = UserFactory(username="dora", groups=[GroupFactory(name="director")])
    instance = instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )
    rec = Recorder(instance)
    task = lambda: instance.tasks.get(status__in=LIVE_TASK_STATUSES)  # noqa: E731
    task_claim(task_id=task().pk, actor=reviewer, now=NOW)
    rec.note()
    task_delegate(task_id=task().pk, to_user_id=reviewer2.pk, actor=reviewer, now=NOW)
    rec.note()
    task_decide(
        task_id=task().pk,
        event="REQUEST_CHANGES",
        comment="cheaper",
        actor=reviewer2,
        now=NOW + timedelta(minutes=5),
    )
    rec.note()
    task_decide(
        task_id=task().pk,
        event="RESUBMIT",
        form={"title": "Cheaper laptop", "amount": 700},
        actor=requester,
        now=NOW + timedelta(minutes=10),
    )
    rec.note()
    assert present(instance)["context"]["revisions"] == 1
    task_escalate_overdue(task_id=task().pk, now=NOW + timedelta(hours=2))
    rec.note()
    task_claim(task_id=task().pk, actor=director, now=NOW + timedelta(hours=2))
    rec.note()
    task_decide(task_id=task().pk, event="APPROVE", actor=director, now=NOW + timedelta(hours=3))
    rec.note()
    rec.check()
    # The context as the director saw it when deciding, and as the first reviewer saw it.
    assert snapshot_at(instance, rec.seen[1][0]).context["amount"] == 900
    assert snapshot_at(instance, rec.seen[6][0]).context["amount"] == 700
    escalated = snapshot_at(instance, rec.seen[5][0]).open_tasks
    assert [(t.assignee, t.roles) for t in escalated] == [(None, ["director"])]
    last = snapshot_at(instance, instance.audit_seq)
    assert (last.status, last.states, last.open_tasks) == ("completed", ["approved"], [])


def test_every_sequence_number_of_a_parallel_flow(requester, operator):
    publish(parallel_flow())
    picker = UserFactory(username="pia", groups=[GroupFactory(name="warehouse")])
    instance = instance_start(definition_key="fulfil", context={}, actor=requester, now=NOW)
    rec = Recorder(instance)
    picking = instance.tasks.get()
    task_claim(task_id=picking.pk, actor=picker, now=NOW + timedelta(minutes=1))
    rec.note()
    task_decide(task_id=picking.pk, event="PICKED", actor=picker, now=NOW + timedelta(minutes=2))
    rec.note()
    instance_send_event(
        instance_id=instance.pk, event="LABEL_CREATED", actor=operator, now=NOW + timedelta(3)
    )
    rec.note()
    rec.check()
    inv, ship = "fulfillment.inventory", "fulfillment.shipping"
    expected = {
        # 1 started, 2 the picking task created
        1: ([f"{inv}.picking", f"{ship}.label", "fulfillment"], []),
        2: ([f"{inv}.picking", f"{ship}.label", "fulfillment"], [(picking.pk, None)]),
        3: ([f"{inv}.picking", f"{ship}.label", "fulfillment"], [(picking.pk, "pia")]),
        4: ([f"{inv}.picking", f"{ship}.label", "fulfillment"], []),  # decided
        5: ([f"{inv}.packed", f"{ship}.label", "fulfillment"], []),  # region moved on
        6: ([f"{inv}.packed", f"{ship}.ready", "fulfillment"], []),
        7: (["shipped"], []),  # the join
        8: (["shipped"], []),  # completed
    }
    assert instance.audit_seq == len(expected)
    for seq, (states, tasks) in expected.items():
        snap = snapshot_at(instance, seq)
        assert (snap.seq, snap.states, [(t.id, t.assignee) for t in snap.open_tasks]) == (
            seq,
            states,
            tasks,
        ), seq
    assert snapshot_at(instance, 2).as_json()["open_tasks"] == [
        {"id": picking.pk, "state": f"{inv}.picking", "assignee": None, "roles": ["warehouse"]}
    ]
    for bad in (0, len(expected) + 1, -1):
        with pytest.raises(NoSuchPoint):
            snapshot_at(instance, bad)
