"""The SLA sweep: deadlines, reminders, each escalation level, `after` timers, catch-up."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections, transaction

from approvals.models import AuditEvent, OutboxMessage, Task, TaskStatus, Timer
from approvals.services.audit import verify_instances
from approvals.services.errors import AlreadyDecided
from approvals.services.instances import instance_start
from approvals.services.sla import (
    sla_sweep,
    task_escalate_overdue,
)
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW, publish, review_flow, routed_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def start(requester, config=None, **context):
    publish(
        config or review_flow(sla="PT1H", remind=["PT20M", "PT40M"], escalate_to=["director", "vp"])
    )
    return instance_start(
        definition_key=(config or {"id": "review"})["id"],
        context={"title": "Laptop", "amount": 900, **context},
        actor=requester,
        now=NOW,
    )


def live(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def topics(instance, topic):
    return list(
        OutboxMessage.objects.filter(instance=instance, topic=topic)
        .order_by("pk")
        .values_list("payload", flat=True)
    )


def test_deadline_and_first_reminder_come_from_the_definition(requester):
    instance = start(requester)
    task = live(instance)
    assert task.due_at == NOW + HOUR
    assert task.next_remind_at == NOW + timedelta(minutes=20)
    assert task.sla_started_at == NOW


def test_business_calendar_sets_due_at_in_working_time(requester):
    config = review_flow(sla="P2D")
    config["settings"] = {"calendar": {"timezone": "Europe/Paris", "country": "FR"}}
    publish(config)
    # NOW is Monday 2026-11-02 10:00 in Paris; Wednesday 11th is a holiday, so starting on
    # Tuesday 10th at 16:00 local, two business days end on Friday 13th at 16:00.
    tuesday = NOW.replace(day=10, hour=15)
    instance = instance_start(
        definition_key="review",
        context={"title": "x", "amount": 1},
        actor=requester,
        now=tuesday,
    )
    assert live(instance).due_at == NOW.replace(day=13, hour=15)


def test_nothing_due_does_nothing(requester):
    instance = start(requester)
    result = sla_sweep(now=NOW + timedelta(minutes=5))
    assert result.total == 0 and result.busy == 0
    assert instance.audit_events.count() == 2


def test_reminders_at_each_offset_then_no_more(requester, reviewer):
    instance = start(requester)
    task_claim(task_id=live(instance).pk, actor=reviewer, now=NOW)
    assert sla_sweep(now=NOW + timedelta(minutes=21)).reminded == 1
    assert sla_sweep(now=NOW + timedelta(minutes=22)).reminded == 0  # idempotent
    task = live(instance)
    assert (task.reminders_sent, task.next_remind_at) == (1, NOW + timedelta(minutes=40))
    assert sla_sweep(now=NOW + timedelta(minutes=41)).reminded == 1
    task.refresh_from_db()
    assert (task.reminders_sent, task.next_remind_at) == (2, None)
    reminded = topics(instance, "task.reminded")
    assert [m["reminder"] for m in reminded] == [1, 2]
    assert reminded[0]["assignee"] == reviewer.pk and reminded[0]["roles"] == ["manager"]
    assert reminded[0]["task"] == task.pk and reminded[0]["state"] == "review"
    events = AuditEvent.objects.filter(instance=instance, event="task.reminded")
    assert {e.channel for e in events} == {"sla"} and events.count() == 2


def test_missed_reminders_are_sent_once(requester):
    instance = start(requester)
    # Beat was down past both offsets: one reminder, none left to send.
    result = sla_sweep(now=NOW + timedelta(minutes=50))
    assert result.reminded == 1
    task = live(instance)
    assert (task.reminders_sent, task.next_remind_at) == (2, None)


def test_each_breach_escalates_one_level_then_the_task_is_flagged(requester, reviewer):
    instance = start(requester)
    first = live(instance)
    task_claim(task_id=first.pk, actor=reviewer, now=NOW)

    result = sla_sweep(now=NOW + HOUR)
    assert (result.escalated, result.flagged) == (1, 0)
    first.refresh_from_db()
    assert first.status == TaskStatus.ESCALATED
    second = live(instance)
    assert second.previous == first and second.escalation_level == 1
    assert list(second.candidate_groups.values_list("name", flat=True)) == ["director"]
    assert second.assignee is None and second.status == TaskStatus.OPEN
    assert second.due_at == NOW + 2 * HOUR  # a new deadline for the new level
    assert second.next_remind_at == NOW + HOUR + timedelta(minutes=20)
    audit = AuditEvent.objects.get(instance=instance, event="task.escalated")
    assert audit.data["reason"] == "escalated by SLA" and audit.channel == "sla"
    assert audit.data["previous_assignee"] == "rob" and audit.data["level"] == 1

    assert sla_sweep(now=NOW + 2 * HOUR).escalated == 1
    third = live(instance)
    assert third.escalation_level == 2
    assert list(third.candidate_groups.values_list("name", flat=True)) == ["vp"]

    # Past the last level: it stays, flagged, and leaves the sweep's queue.
    result = sla_sweep(now=NOW + 3 * HOUR)
    assert (result.escalated, result.flagged) == (0, 1)
    third.refresh_from_db()
    assert third.is_live and third.breached_at == NOW + 3 * HOUR
    assert sla_sweep(now=NOW + 9 * HOUR).flagged == 0

    messages = topics(instance, "task.escalated")
    assert [(m["level"], m["flagged"]) for m in messages] == [(1, False), (2, False), (2, True)]
    assert messages[0]["previous"] == first.pk and messages[0]["task"] == second.pk
    assert messages[0]["previous_assignee"] == reviewer.pk
    assert messages[0]["roles"] == ["director"] and messages[0]["requester"] == requester.pk
    assert messages[2]["task"] == messages[2]["previous"] == third.pk
    instance.refresh_from_db()
    assert list(verify_instances([instance])) == []


def test_escalated_task_is_decided_by_the_next_level_only(requester, reviewer):
    instance = start(requester)
    old = live(instance)
    sla_sweep(now=NOW + HOUR)
    director = UserFactory(username="dora", groups=[GroupFactory(name="director")])
    with pytest.raises(AlreadyDecided, match="escalated"):
        task_decide(task_id=old.pk, event="APPROVE", actor=reviewer, now=NOW + HOUR)
    result = task_decide(task_id=live(instance).pk, event="APPROVE", actor=director, now=NOW + HOUR)
    assert result.instance.state == "approved"


def test_without_escalate_to_a_breach_only_flags(requester):
    instance = start(requester, review_flow(sla="PT1H"))
    assert sla_sweep(now=NOW + HOUR).flagged == 1
    assert live(instance).breached_at == NOW + HOUR
    (message,) = topics(instance, "task.escalated")
    assert message["flagged"] is True and message["level"] == 0


def test_a_decided_task_is_not_escalated(requester, reviewer):
    instance = start(requester)
    task = live(instance)
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert sla_sweep(now=NOW + 5 * HOUR).total == 0
    # Asked directly for a task that is no longer live: nothing happens.
    assert task_escalate_overdue(task_id=task.pk, now=NOW + 5 * HOUR) == "stale"
    assert not AuditEvent.objects.filter(event="task.escalated").exists()


def test_sweeping_twice_escalates_once(requester):
    instances = [start(requester) if i == 0 else _another(requester, i) for i in range(3)]
    first = sla_sweep(now=NOW + HOUR)
    again = sla_sweep(now=NOW + HOUR)
    assert first.escalated == 3 and again.escalated == 0
    for instance in instances:
        assert instance.tasks.filter(status="escalated").count() == 1


def _another(requester, i):
    return instance_start(
        definition_key="review",
        context={"title": f"t{i}", "amount": 1},
        actor=requester,
        now=NOW,
    )


def test_after_timer_moves_the_request_when_due(requester, finance, reviewer):
    publish(routed_flow())
    instance = instance_start(
        definition_key="routed", context={"amount": 10}, actor=requester, now=NOW
    )
    task_decide(task_id=live(instance).pk, event="APPROVE", actor=finance, now=NOW)
    instance.refresh_from_db()
    assert instance.state == "awaiting_payment"
    timer = Timer.objects.get(instance=instance)
    assert timer.due_at == NOW + timedelta(days=7)
    assert sla_sweep(now=NOW + timedelta(days=6)).timers_fired == 0
    assert sla_sweep(now=NOW + timedelta(days=8)).timers_fired == 1
    assert sla_sweep(now=NOW + timedelta(days=9)).timers_fired == 0
    instance.refresh_from_db()
    timer.refresh_from_db()
    assert (instance.state, instance.status) == ("rejected", "rejected")
    assert timer.fired_at == NOW + timedelta(days=8)
    move = AuditEvent.objects.get(instance=instance, event="transition", to_state="rejected")
    assert move.channel == "sla" and move.data["after"] == "P7D"


def test_millisecond_after_and_a_timer_of_a_left_state_never_fires(requester):
    config = {
        "id": "wait",
        "title": "Wait",
        "initial": "waiting",
        "states": {
            "waiting": {"after": {"1500": "timed_out"}, "on": {"GO": "done"}},
            "timed_out": {"type": "final", "meta": {"outcome": "cancelled"}},
            "done": {"type": "final"},
        },
    }
    publish(config)
    slow = instance_start(definition_key="wait", context={}, actor=requester, now=NOW)
    quick = instance_start(definition_key="wait", context={}, actor=requester, now=NOW)
    assert Timer.objects.get(instance=slow).due_at == NOW + timedelta(milliseconds=1500)
    operator = UserFactory(is_superuser=True)
    from approvals.services.instances import instance_send_event

    instance_send_event(instance_id=quick.pk, event="GO", actor=operator, now=NOW)
    assert sla_sweep(now=NOW + timedelta(seconds=2)).timers_fired == 1
    slow.refresh_from_db()
    quick.refresh_from_db()
    assert slow.state == "timed_out" and quick.state == "done"
    assert Timer.objects.get(instance=quick).fired_at is None


def test_catch_up_after_beat_was_down_handles_each_item_once(requester):
    instances = [start(requester)] + [_another(requester, i) for i in range(4)]
    # Several deadlines (reminders, first and second level) passed while nothing ran.
    result = sla_sweep(now=NOW + timedelta(hours=5))
    assert result.escalated == 5 and result.reminded == 0  # escalated first, fresh reminders
    assert sla_sweep(now=NOW + timedelta(hours=5)).total == 0
    for instance in instances:
        assert instance.audit_events.filter(event="task.escalated").count() == 1


def test_management_command_prints_what_it_did(requester, capsys):
    start(requester)
    with time_machine.travel(NOW + 2 * HOUR, tick=False):
        call_command("sla_sweep")
    out = capsys.readouterr().out
    assert "tasks escalated: 1" in out and "reminders sent: 0" in out
    with time_machine.travel(NOW + 2 * HOUR, tick=False):
        call_command("sla_sweep")
    assert "nothing was due" in capsys.readouterr().out


def test_management_command_refuses_a_bad_limit(capsys):
    with pytest.raises(SystemExit):
        call_command("sla_sweep", "--limit", "0")
    assert "at least 1" in capsys.readouterr().err


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_request_locked_by_someone_else_is_skipped_not_waited_for(requester):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")
    instance = start(requester)
    locked = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        try:
            with transaction.atomic():
                from approvals.models import WorkflowInstance

                WorkflowInstance.objects.select_for_update().get(pk=instance.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(30)
        result = sla_sweep(now=NOW + HOUR)
        # Both its escalation and its reminder are left for the next sweep.
        assert (result.escalated, result.reminded, result.busy) == (0, 0, 2)
    finally:
        release.set()
        holder.join()
    assert sla_sweep(now=NOW + HOUR).escalated == 1


def test_a_failing_item_holds_up_no_other_and_leaves_nothing_half_written(requester, monkeypatch):
    from approvals.services import sla

    instances = [start(requester) if i == 0 else _another(requester, i) for i in range(3)]
    broken = live(instances[1])
    escalate = sla._escalate

    def escalate_but_one(instance, task, now):
        outcome = escalate(instance, task, now)
        if task.pk == broken.pk:
            raise RuntimeError("the disk is full")  # after its writes: all must be undone
        return outcome

    monkeypatch.setattr(sla, "_escalate", escalate_but_one)
    result = sla_sweep(now=NOW + HOUR)
    assert (result.escalated, result.failed) == (2, 1)
    broken.refresh_from_db()
    assert broken.status == TaskStatus.OPEN and not broken.successors.exists()
    assert not AuditEvent.objects.filter(instance=instances[1], event="task.escalated").exists()
    monkeypatch.setattr(sla, "_escalate", escalate)
    assert sla_sweep(now=NOW + HOUR).escalated == 1  # the next sweep tries it again
    assert list(verify_instances(instances)) == []


def test_many_overdue_tasks_go_several_to_a_transaction_each_escalated_once(requester):
    from django.test.utils import CaptureQueriesContext

    from approvals.services.sla import SWEEP_BATCH

    start(requester)
    for i in range(1, SWEEP_BATCH + 5):
        _another(requester, i)
    with CaptureQueriesContext(connection) as queries:
        result = sla_sweep(now=NOW + HOUR)
    assert result.escalated == SWEEP_BATCH + 5
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    if connection.vendor == "postgresql":
        assert len(locks) == 2  # one lock query per batch
    assert Task.objects.filter(status="escalated").count() == SWEEP_BATCH + 5
    assert Task.objects.filter(status="open", escalation_level=1).count() == SWEEP_BATCH + 5


def test_two_overdue_tasks_of_one_request_are_both_escalated(requester, finance):
    GroupFactory(name="director")

    def part(role):
        task = {"roles": [role], "sla": "PT1H", "escalate_to": ["director"]}
        return {
            "initial": "check",
            "states": {
                "check": {"meta": {"task": task}, "on": {"DONE": "checked"}},
                "checked": {"type": "final"},
            },
        }

    config = {
        "id": "both",
        "title": "Both",
        "initial": "checks",
        "states": {
            "checks": {
                "type": "parallel",
                "states": {"legal": part("manager"), "money": part("finance")},
                "onDone": "done",
            },
            "done": {"type": "final"},
        },
    }
    instance = start(requester, config)
    assert sla_sweep(now=NOW + HOUR).escalated == 2
    escalated = instance.tasks.filter(status="open", escalation_level=1)
    assert sorted(escalated.values_list("state", flat=True)) == [
        "checks.legal.check",
        "checks.money.check",
    ]
    assert list(verify_instances([instance])) == []
