"""Time working for the user: reminders, escalations and `after` timers that fell due.

`sla_sweep` is what Celery beat runs every SLA_SWEEP_SECONDS (and `manage.py sla_sweep` runs
once). Deadlines live in the database as `due_at` columns found by indexed queries, never as
Celery countdowns (invariant 6), so a sweep after beat was down catches up on everything that
fell due meanwhile.

Each item is applied through the engine, on rows claimed with `SELECT ... FOR UPDATE SKIP
LOCKED`: two sweepers running at once never wait for each other or handle the same item, and an
item a person is deciding right now is left for the next sweep. After the claim each item is
read again and re-checked (still live, still due), which makes a sweep idempotent: running it
twice, or concurrently, escalates each task once. Escalations and reminders go several to a
transaction (`SWEEP_BATCH`, one request once per batch), timers one each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from approvals import metrics, tracing
from approvals.models import (
    LIVE_TASK_STATUSES,
    Channel,
    Task,
    TaskStatus,
    Timer,
    WorkflowInstance,
)
from approvals.roles import role_ids_by_name
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict
from approvals.services.locking import try_lock_instance, try_lock_task, try_lock_tasks

logger = logging.getLogger(__name__)

# Outcomes of one item.
ESCALATED = "escalated"
FLAGGED = "flagged"
REMINDED = "reminded"
FIRED = "fired"
TIMER_FAILED = "timer_failed"  # its guard failed: recorded, the sweep goes on
BUSY = "busy"  # another transaction holds the request; the next sweep tries again
STALE = "stale"  # already handled (by another sweeper, or a person acted first)
FAILED = "failed"  # raised an error: logged and undone; the next sweep tries again

ESCALATION_REASON = "escalated by SLA"


@dataclass
class SweepResult:
    escalated: int = 0
    flagged: int = 0
    reminded: int = 0
    timers_fired: int = 0
    timers_failed: int = 0
    busy: int = 0
    stale: int = 0
    failed: int = 0

    def add(self, outcome: str) -> None:
        name = {ESCALATED: "escalated", FLAGGED: "flagged", REMINDED: "reminded"}.get(
            outcome,
            {
                FIRED: "timers_fired",
                TIMER_FAILED: "timers_failed",
                BUSY: "busy",
                STALE: "stale",
                FAILED: "failed",
            }.get(outcome),
        )
        if name:
            setattr(self, name, getattr(self, name) + 1)

    @property
    def total(self) -> int:
        return (
            self.escalated + self.flagged + self.reminded + self.timers_fired + self.timers_failed
        )

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        return (
            f"escalated {self.escalated}, flagged {self.flagged}, reminded {self.reminded}, "
            f"timers fired {self.timers_fired}, timers failed {self.timers_failed}, "
            f"busy {self.busy}, already handled {self.stale}, failed {self.failed}"
        )


# ----- selectors: what is due (each an indexed range scan)


def overdue_task_ids(*, now: datetime, limit: int | None = None) -> list[int]:
    """Live, unflagged tasks past their deadline (partial index task_sla_due)."""
    queryset = Task.objects.filter(
        status__in=LIVE_TASK_STATUSES, breached_at__isnull=True, due_at__lte=now
    )
    return _ids(queryset, "due_at", limit)


def reminder_task_ids(*, now: datetime, limit: int | None = None) -> list[int]:
    """Live tasks whose next reminder fell due (partial index task_live_remind)."""
    queryset = Task.objects.filter(status__in=LIVE_TASK_STATUSES, next_remind_at__lte=now)
    return _ids(queryset, "next_remind_at", limit)


def due_timer_ids(*, now: datetime, limit: int | None = None) -> list[int]:
    """Pending `after` timers that fell due (partial index timer_pending_due)."""
    queryset = Timer.objects.filter(
        fired_at__isnull=True, cancelled_at__isnull=True, due_at__lte=now
    )
    return _ids(queryset, "due_at", limit)


def _ids(queryset: QuerySet[Any], order: str, limit: int | None) -> list[int]:
    queryset = queryset.order_by(order, "pk").values_list("pk", flat=True)
    return list(queryset[:limit] if limit else queryset)


# ----- the sweep


def sla_sweep(*, now: datetime, limit: int | None = None) -> SweepResult:
    """Apply everything due at `now`: escalations first (a task escalated now needs no
    reminder), then reminders, then timers. `limit` caps each kind per sweep."""
    result = SweepResult()
    with metrics.SLA_SWEEP_SECONDS.time():
        for outcome in _in_batches(overdue_task_ids(now=now, limit=limit), _escalate, now):
            result.add(outcome)
        for outcome in _in_batches(reminder_task_ids(now=now, limit=limit), _remind, now):
            result.add(outcome)
        for timer_id in due_timer_ids(now=now, limit=limit):
            result.add(timer_fire(timer_id=timer_id, now=now))
    if result.total or result.busy or result.failed:
        logger.info("SLA sweep at %s: %s", now.isoformat(), result)
    return result


# ----- tasks: several to a transaction

# Escalations and reminders are applied this many to a transaction: one lock query and one
# commit for them all, while no request is held for longer than one batch takes.
SWEEP_BATCH = 25

ApplyLocked = Callable[[WorkflowInstance, Task, datetime], str]


def _in_batches(task_ids: list[int], apply: ApplyLocked, now: datetime) -> Iterator[str]:
    for start in range(0, len(task_ids), SWEEP_BATCH):
        yield from _batch(task_ids[start : start + SWEEP_BATCH], apply, now)


def _batch(task_ids: list[int], apply: ApplyLocked, now: datetime) -> list[str]:
    """`apply` to each of these tasks that could be locked, in one transaction. A second task
    of a request already in the batch gets a transaction of its own afterwards (a request is
    changed through one copy of its row). Should any item fail, the whole batch is undone and
    each item tried again in its own transaction: one bad item costs the others only time."""
    later = []
    try:
        with transaction.atomic():
            locked = try_lock_tasks(task_ids=task_ids)
            outcomes = []
            requests = set()
            for task_id in task_ids:
                if task_id not in locked:
                    outcomes.append(BUSY)
                    continue
                instance, task = locked[task_id]
                if instance.pk in requests:
                    later.append(task_id)
                    continue
                requests.add(instance.pk)
                outcomes.append(apply(instance, task, now))
    except Exception:
        logger.exception("an SLA batch failed; its %d items are tried one by one", len(task_ids))
        later = task_ids
        outcomes = []
    return outcomes + [_one_of_a_sweep(task_id, apply, now) for task_id in later]


def _one_of_a_sweep(task_id: int, apply: ApplyLocked, now: datetime) -> str:
    """One item in its own transaction; an error is logged and the sweep goes on."""
    try:
        return _one(task_id, apply, now)
    except Exception:
        logger.exception("SLA item: task %s failed; the next sweep tries again", task_id)
        return FAILED


@tracing.service_span("signoff.task_escalate_overdue")
@transaction.atomic
def _one(task_id: int, apply: ApplyLocked, now: datetime) -> str:
    locked = try_lock_task(task_id=task_id)
    if locked is None:
        return BUSY
    instance, task = locked
    return apply(instance, task, now)


def task_escalate_overdue(*, task_id: int, now: datetime) -> str:
    """A task past its deadline goes one level up its state's `escalate_to` roles, with a new
    deadline; past the last level it stays where it is and is flagged (`breached_at`)."""
    return _one(task_id, _escalate, now)


def task_remind(*, task_id: int, now: datetime) -> str:
    """One reminder for a task whose next `remind` offset passed. When several passed while
    the sweep was not running, one reminder is sent and the schedule moves to the next offset
    still ahead."""
    return _one(task_id, _remind, now)


def _escalate(instance: WorkflowInstance, task: Task, now: datetime) -> str:
    if not task.is_live or task.breached_at is not None or not task.due_at or task.due_at > now:
        return STALE
    run = Run(
        instance, statechart_for(instance.definition), actor=None, channel=Channel.SLA, now=now
    )
    spec = run.chart.state(task.state).task
    levels = spec.escalate_to if spec is not None else ()
    previous_roles = run.roles_of(task)
    previous_assignee = task.assignee_id
    common = {
        "state": task.state,
        "previous": task.pk,
        "previous_assignee": previous_assignee,
        "requester": instance.requester_id,
    }
    next_role = levels[task.escalation_level] if task.escalation_level < len(levels) else None
    role_id = role_ids_by_name({next_role}).get(next_role) if next_role else None
    if next_role is not None and role_id is None:
        # Flag rather than fail: a deleted role must not make the sweep retry for ever.
        logger.warning("escalation role %r of %s no longer exists", next_role, task.state)
    if role_id is None:
        task.breached_at = now
        task.save(update_fields=["breached_at"])
        reason = (
            f"escalation role '{next_role}' no longer exists; flagged"
            if next_role
            else "deadline passed at the last escalation level; flagged"
        )
        run.record(
            "task.sla_breached",
            task=task,
            to_state=task.state,
            data={"reason": reason, "level": task.escalation_level, "due_at": _iso(task.due_at)},
        )
        run.emit(
            "task.escalated",
            {
                **common,
                "task": task.pk,
                "level": task.escalation_level,
                "roles": previous_roles,
                "flagged": True,
            },
            key=f"breach:{task.pk}",
        )
        run.commit()
        return FLAGGED

    assert spec is not None and spec.sla is not None
    level = task.escalation_level + 1
    task.close(TaskStatus.ESCALATED)
    task.closed_at = now
    task.save(update_fields=["status", "closed_at"])
    successor = run.copy_task(
        task,
        role_ids=[role_id],
        escalation_level=level,
        assignee=None,
        delegated_by=None,
        for_requester=False,
        status=TaskStatus.OPEN,
        claimed_at=None,
        due_at=run.chart.deadline(now, spec.sla),
        next_remind_at=run.chart.deadline(now, min(spec.remind)) if spec.remind else None,
        sla_started_at=now,
        reminders_sent=0,
        breached_at=None,
    )
    run.record(
        "task.escalated",
        task=successor,
        to_state=task.state,
        data={
            "reason": ESCALATION_REASON,
            "from_task": task.pk,
            "level": level,
            "roles": [next_role],
            "previous_roles": previous_roles,
            "previous_assignee": task.assignee.username if task.assignee else None,
            "due_at": _iso(successor.due_at),
        },
    )
    run.emit(
        "task.escalated",
        {
            **common,
            "task": successor.pk,
            "level": level,
            "roles": [next_role],
            "previous_roles": previous_roles,
            "due_at": _iso(successor.due_at),
            "flagged": False,
        },
        key=f"escalate:{successor.pk}",
    )
    run.commit()
    return ESCALATED


@tracing.service_span("signoff.task_remind")
def _remind(instance: WorkflowInstance, task: Task, now: datetime) -> str:
    if not task.is_live or task.next_remind_at is None or task.next_remind_at > now:
        return STALE
    run = Run(
        instance, statechart_for(instance.definition), actor=None, channel=Channel.SLA, now=now
    )
    spec = run.chart.state(task.state).task
    anchor = task.sla_started_at or task.created_at
    times = sorted(run.chart.deadline(anchor, offset) for offset in (spec.remind if spec else ()))
    ahead = [at for at in times if at > now]
    task.reminders_sent = max(task.reminders_sent + 1, len(times) - len(ahead))
    task.next_remind_at = ahead[0] if ahead else None
    task.save(update_fields=["reminders_sent", "next_remind_at"])
    roles = run.roles_of(task)
    run.record(
        "task.reminded",
        task=task,
        to_state=task.state,
        data={"reminder": task.reminders_sent, "due_at": _iso(task.due_at)},
    )
    run.emit(
        "task.reminded",
        {
            "task": task.pk,
            "state": task.state,
            "assignee": task.assignee_id,
            "roles": roles,
            "reminder": task.reminders_sent,
            "due_at": _iso(task.due_at),
        },
        key=f"remind:{task.pk}:{task.reminders_sent}",
    )
    run.commit()
    return REMINDED


# ----- timers: one to a transaction


@tracing.service_span("signoff.timer_fire")
def timer_fire(*, timer_id: int, now: datetime) -> str:
    """An `after` transition that fell due moves the request, if it is still in that state.

    A guard (or assign) that fails, over its evaluation budget for instance, fails the same way
    at every sweep: the timer is then marked fired, as one whose guards do not hold, and the
    failure is recorded in the request's history (`timer.failed`), so that neither this sweep
    nor the next ones are held up by it."""
    instance_id = Timer.objects.filter(pk=timer_id).values_list("instance_id", flat=True).first()
    if instance_id is None:
        return STALE
    try:
        return _timer_fire(timer_id, instance_id, now)
    except Conflict as exc:
        logger.warning("timer %s of request %s failed: %s", timer_id, instance_id, exc.message)
        return _timer_failed(timer_id, instance_id, exc.message, now)


def _timer_fire(timer_id: int, instance_id: int, now: datetime) -> str:
    with transaction.atomic():
        instance = try_lock_instance(instance_id=instance_id)
        if instance is None:
            return BUSY
        timer = Timer.objects.get(pk=timer_id)
        if timer.fired_at or timer.cancelled_at or timer.due_at > now:
            return STALE
        run = Run(
            instance, statechart_for(instance.definition), actor=None, channel=Channel.SLA, now=now
        )
        if not instance.is_active or timer.state not in run.active_paths():
            # Left without the engine cancelling it (an older version's timers): retire it.
            Timer.objects.filter(pk=timer.pk).update(cancelled_at=now)
            return STALE
        # Marked first: leaving the state cancels its still-pending timers, this one excluded.
        Timer.objects.filter(pk=timer.pk).update(fired_at=now)
        run.take_first(run.chart.state(timer.state).after.get(timer.delay, []), None)
        run.commit()
    return FIRED


@transaction.atomic
def _timer_failed(timer_id: int, instance_id: int, error: str, now: datetime) -> str:
    """What the failed attempt wrote was rolled back with it; this records the failure."""
    instance = try_lock_instance(instance_id=instance_id)
    if instance is None:
        return BUSY
    timer = Timer.objects.get(pk=timer_id)
    if timer.fired_at or timer.cancelled_at:
        return STALE
    Timer.objects.filter(pk=timer.pk).update(fired_at=now)
    run = Run(
        instance, statechart_for(instance.definition), actor=None, channel=Channel.SLA, now=now
    )
    run.record(
        "timer.failed",
        from_state=timer.state,
        to_state=timer.state,
        data={"after": timer.delay, "error": error},
    )
    run.commit()
    return TIMER_FAILED


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
