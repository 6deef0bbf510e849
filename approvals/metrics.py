"""Prometheus metrics (README, "Metrics"; docs/observability.md).

Every process (each Daphne, each Celery child, beat, a command) writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode; settings.py puts the variable in
the environment before anything imports prometheus-client), and `GET /metrics` adds them up.

Counters count what committed: `count_run` is called by `Run.commit` with what the run wrote
(its audit events and outbox messages) and increments after the transaction commits, so a
rolled-back decision counts nothing. The gauges of open and overdue tasks and of the outbox are
set by `refresh_gauges`, which beat runs every METRICS_REFRESH_SECONDS, never by a scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram

# Decisions take minutes to weeks: buckets from a minute to a month.
DECISION_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400)
SWEEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

TRANSITIONS = Counter(
    "signoff_transitions_total",
    "State transitions taken, by workflow and by what fired them (the event, always, after ...)",
    ["workflow", "event"],
)
DECISIONS = Counter(
    "signoff_decisions_total",
    "Decisions on tasks, by workflow and decision (APPROVE, REJECT ...)",
    ["workflow", "outcome"],
)
DECISION_SECONDS = Histogram(
    "signoff_decision_seconds",
    "Time from a task's creation to its decision",
    ["workflow"],
    buckets=DECISION_BUCKETS,
)
ESCALATIONS = Counter("signoff_escalations_total", "Tasks escalated by the SLA sweep")
REMINDERS = Counter("signoff_reminders_total", "Reminders sent by the SLA sweep")
ACTION_ATTEMPTS = Counter(
    "signoff_action_attempts_total",
    "Attempts of automated steps, by action and result (completed, retrying, failed)",
    ["action", "result"],
)
MANUAL_REVIEWS = Counter(
    "signoff_manual_reviews_total", "Automated steps handed to an operator's manual review"
)
DELIVERIES_FAILED = Counter(
    "signoff_deliveries_failed_total",
    "Deliveries that failed for good (their last attempt failed), by channel",
    ["channel"],
)
SLA_SWEEP_SECONDS = Histogram(
    "signoff_sla_sweep_seconds", "Duration of each SLA sweep", buckets=SWEEP_BUCKETS
)
# Live gauge: each process's open connections, summed over the processes still running.
WEBSOCKET_CONNECTIONS = Gauge(
    "signoff_websocket_connections", "Open WebSocket connections", multiprocess_mode="livesum"
)
# Set by the beat task in whichever worker child runs it: the newest value wins.
OPEN_TASKS = Gauge(
    "signoff_open_tasks",
    "Live tasks (open or claimed), by workflow and state",
    ["workflow", "state"],
    multiprocess_mode="mostrecent",
)
OVERDUE_TASKS = Gauge(
    "signoff_overdue_tasks",
    "Live tasks past their due time, by workflow",
    ["workflow"],
    multiprocess_mode="mostrecent",
)
OUTBOX_BACKLOG = Gauge(
    "signoff_outbox_backlog",
    "Deliveries still to make (due or waiting for a retry), by channel",
    ["channel"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "signoff_outbox_oldest_seconds",
    "How long the delivery that has been due the longest has waited, by channel",
    ["channel"],
    multiprocess_mode="mostrecent",
)


# ----- counters, from what a run committed


def count_run(
    workflow: str,
    *,
    events: Iterable[Any],
    messages: Iterable[Any],
    tasks: Mapping[int, Any],
    now: datetime,
) -> None:
    """Count a run's audit events and outbox messages once its transaction commits."""
    counts: list[tuple[Any, tuple[str, ...], float]] = []
    for event in events:
        name, data = event.event, event.data or {}
        if name == "transition":
            fired = str(data.get("event") or data.get("trigger"))
            counts.append((TRANSITIONS, (workflow, fired), 1))
        elif name == "task.escalated":
            counts.append((ESCALATIONS, (), 1))
        elif name == "task.reminded":
            counts.append((REMINDERS, (), 1))
        elif name == "task.decided":
            counts.append((DECISIONS, (workflow, str(data.get("decision"))), 1))
            task = tasks.get(event.task_id)
            if task is not None and task.created_at is not None:
                seconds = max((now - task.created_at).total_seconds(), 0.0)
                counts.append((DECISION_SECONDS, (workflow,), seconds))
    for message in messages:
        topic, payload = message.topic, message.payload
        if topic in ("action.completed", "action.retrying", "action.failed"):
            result = topic.removeprefix("action.")
            counts.append((ACTION_ATTEMPTS, (str(payload.get("src")), result), 1))
            if topic == "action.failed" and payload.get("task"):
                counts.append((MANUAL_REVIEWS, (), 1))
    if counts:
        transaction.on_commit(lambda: _apply(counts))


def delivery_failed(channel: str) -> None:
    """A delivery gave up (its last attempt failed): counted once its row says so."""
    transaction.on_commit(lambda: DELIVERIES_FAILED.labels(channel).inc())


def _apply(counts: list[tuple[Any, tuple[str, ...], float]]) -> None:
    for metric, labels, amount in counts:
        target = metric.labels(*labels) if labels else metric
        if isinstance(metric, Histogram):
            target.observe(amount)
        else:
            target.inc(amount)


# ----- gauges, refreshed by beat


def refresh_gauges(*, now: datetime) -> dict[str, int]:
    """Set the task and outbox gauges from the database: a few grouped queries on the live
    rows' partial indexes. Every (workflow, state) of the published definitions is set, zero
    where nothing waits, so that a count that fell to nothing reads 0 in every process."""
    from django.db.models import Count, Min

    from approvals.models import LIVE_TASK_STATUSES, DefinitionStatus, StateDefinition, Task
    from approvals.outbox import retry

    states = set(
        StateDefinition.objects.exclude(definition__status=DefinitionStatus.DRAFT)
        .values_list("definition__key", "path")
        .distinct()
    )
    open_counts = {
        (key, state): n
        for key, state, n in Task.objects.filter(status__in=LIVE_TASK_STATUSES)
        .values_list("definition__key", "state")
        .annotate(n=Count("id"))
        .values_list("definition__key", "state", "n")
    }
    overdue = dict(
        Task.objects.filter(status__in=LIVE_TASK_STATUSES, due_at__lt=now)
        .values_list("definition__key")
        .annotate(n=Count("id"))
        .values_list("definition__key", "n")
    )
    for key, state in states | set(open_counts):
        OPEN_TASKS.labels(key, state).set(open_counts.get((key, state), 0))
    for key in {key for key, _ in states} | set(overdue):
        OVERDUE_TASKS.labels(key).set(overdue.get(key, 0))
    backlog: dict[str, int] = {}
    for queue in retry.queues():
        live = queue.model.objects.filter(queue.live)
        backlog[queue.name] = live.count()
        oldest = live.filter(**{f"{queue.due_field}__lte": now}).aggregate(
            oldest=Min(queue.due_field)
        )["oldest"]
        OUTBOX_BACKLOG.labels(queue.name).set(backlog[queue.name])
        OUTBOX_OLDEST_SECONDS.labels(queue.name).set(
            max((now - oldest).total_seconds(), 0.0) if oldest else 0
        )
    return backlog
