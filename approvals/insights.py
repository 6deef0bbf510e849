"""The process owner's figures: one module of reads, computed at the time of asking
from the rows the services already write (see docs/insights.md for what comes from what).

Nothing here writes. Every figure is an SQL aggregate over an indexed slice of the rows:
requests by (workflow_key, created_at / completed_at), tasks by (definition, created_at),
transitions by their time. Percentiles are PostgreSQL's `percentile_cont`; on SQLite, which has
none, the same rows are read and the same interpolation is done in Python (`percentile`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import TruncWeek
from django.utils import timezone

from approvals.models import (
    LIVE_TASK_STATUSES,
    AuditEvent,
    Decision,
    InstanceStatus,
    Task,
    TaskKind,
    TaskStatus,
    WorkflowDefinition,
    WorkflowInstance,
)

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
# A period longer than this is refused: the figures are for looking at a process, not for
# scanning the whole history at once.
MAX_DAYS = 400
ENDED = (
    InstanceStatus.COMPLETED,
    InstanceStatus.REJECTED,
    InstanceStatus.WITHDRAWN,
    InstanceStatus.CANCELLED,
    InstanceStatus.FAILED,
)


class PeriodError(ValueError):
    """A period that cannot be: {field: [message]}."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = errors


@dataclass(frozen=True)
class Period:
    """[since, until): `until` is exclusive; a date range given by days includes its last day."""

    since: datetime
    until: datetime

    @classmethod
    def last_days(cls, days: int, now: datetime) -> Period:
        return cls(now - timedelta(days=days), now)

    @classmethod
    def from_dates(
        cls, since: date | None, until: date | None, now: datetime, days: int = DEFAULT_DAYS
    ) -> Period:
        """A date range in the current time zone; a missing end is today, a missing start
        `days` before the end."""
        tz = timezone.get_current_timezone()
        errors: dict[str, list[str]] = {}
        end = (
            datetime.combine(until + timedelta(days=1), time.min, tz) if until is not None else now
        )
        start = (
            datetime.combine(since, time.min, tz)
            if since is not None
            else end - timedelta(days=days)
        )
        if end <= start:
            errors["until"] = ["The end must not be before the start."]
        elif end - start > timedelta(days=MAX_DAYS):
            errors["since"] = [f"At most {MAX_DAYS} days at a time."]
        if errors:
            raise PeriodError(errors)
        return cls(start, end)

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


@dataclass(frozen=True)
class Scope:
    """Which requests: one workflow (None: all), optionally one of its versions, and a period."""

    period: Period
    workflow: str | None = None
    version: int | None = None

    def definition_ids(self) -> list[int] | None:
        """None: every definition."""
        if self.workflow is None:
            return None
        found = WorkflowDefinition.objects.filter(key=self.workflow)
        if self.version is not None:
            found = found.filter(version=self.version)
        return list(found.values_list("pk", flat=True))

    def instances(self) -> QuerySet[WorkflowInstance]:
        found = WorkflowInstance.objects.all()
        if self.workflow is not None:
            found = found.filter(workflow_key=self.workflow)
            if self.version is not None:
                found = found.filter(definition__version=self.version)
        return found

    def tasks(self, ids: list[int] | None = None) -> QuerySet[Task]:
        ids = self.definition_ids() if ids is None else ids
        found = Task.objects.all()
        return found if ids is None else found.filter(definition_id__in=ids)


# ----- SQL pieces


class Seconds(Func):
    """end - start in seconds, as a float, on PostgreSQL and SQLite alike."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_postgresql(self, compiler: Any, conn: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            conn,
            template="CAST(EXTRACT(EPOCH FROM (%(expressions)s)) AS double precision)",
            arg_joiner=" - ",
            **extra,
        )

    def as_sqlite(self, compiler: Any, conn: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            conn,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
            **extra,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile (linear interpolation between the nearest values)."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("a fraction between 0 and 1")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def has_percentiles() -> bool:
    return connection.vendor == "postgresql"


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The same interpolation as percentile_cont: position fraction * (n - 1) in sorted order."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _distribution(rows: QuerySet[Any], expression: Any) -> dict[str, float | None]:
    """p50, p90 and max of an expression over rows (None where there are none)."""
    if has_percentiles():
        found = rows.aggregate(
            p50=PercentileCont(expression, 0.5),
            p90=PercentileCont(expression, 0.9),
            max=Max(expression),
        )
        return {k: _round(v) for k, v in found.items()}
    values = [v for v in rows.annotate(_v=expression).values_list("_v", flat=True) if v is not None]
    return {
        "p50": _round(percentile(values, 0.5)),
        "p90": _round(percentile(values, 0.9)),
        "max": _round(max(values) if values else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _weeks(period: Period) -> list[date]:
    """The Mondays of the weeks the period touches (current time zone), oldest first."""
    tz = timezone.get_current_timezone()
    first = timezone.localtime(period.since, tz).date()
    last = timezone.localtime(period.until - timedelta(microseconds=1), tz).date()
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def _week_of(value: datetime | date) -> date:
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value - timedelta(days=value.weekday())


# ----- overview


@dataclass
class Overview:
    started: int
    completed: int
    rejected: int
    withdrawn: int
    cancelled: int
    failed: int
    open: int
    overdue: int
    lead_time_s: dict[str, float | None]
    within_sla_ratio: float | None
    with_sla: int
    throughput: list[tuple[date, int]] = field(default_factory=list)
    kept: int = 0  # of with_sla, those that kept every deadline


def _breach_q(now: datetime, prefix: str = "") -> Q:
    """A task past its deadline while it was live: closed after it, or still live beyond it."""
    p = prefix
    return Q(**{f"{p}due_at__isnull": False}) & (
        Q(**{f"{p}closed_at__gt": F(f"{p}due_at")})
        | Q(**{f"{p}closed_at__isnull": True, f"{p}due_at__lt": now})
    )


def insights_overview(*, scope: Scope, now: datetime) -> Overview:
    """Requests started in the period; requests ended in it by outcome, with their lead time
    (start to end) and whether they kept every deadline; open and overdue requests now."""
    period = scope.period
    requests = scope.instances()
    started = requests.filter(created_at__gte=period.since, created_at__lt=period.until).count()
    ended = requests.filter(
        status__in=ENDED, completed_at__gte=period.since, completed_at__lt=period.until
    )
    by_status = dict(ended.values_list("status").annotate(n=Count("id")).order_by())
    # As WHERE EXISTS (a semi-join the planner hashes) rather than a probe per request.
    tasks = Task.objects.filter(instance=OuterRef("pk"), due_at__isnull=False)
    with_sla = ended.filter(Exists(tasks))
    sla = {"with_sla": with_sla.count()}
    sla["kept"] = sla["with_sla"] - with_sla.filter(Exists(tasks.filter(_breach_q(now)))).count()
    weekly = dict.fromkeys(_weeks(period), 0)
    for week, n in (
        ended.annotate(week=TruncWeek("completed_at"))
        .values_list("week")
        .annotate(n=Count("id"))
        .order_by()
    ):
        monday = _week_of(week)
        weekly[monday] = weekly.get(monday, 0) + n
    active = requests.filter(status=InstanceStatus.ACTIVE)
    late = Task.objects.filter(
        instance=OuterRef("pk"), status__in=LIVE_TASK_STATUSES, due_at__lt=now
    )
    return Overview(
        started=started,
        completed=by_status.get(InstanceStatus.COMPLETED, 0),
        rejected=by_status.get(InstanceStatus.REJECTED, 0),
        withdrawn=by_status.get(InstanceStatus.WITHDRAWN, 0),
        cancelled=by_status.get(InstanceStatus.CANCELLED, 0),
        failed=by_status.get(InstanceStatus.FAILED, 0),
        open=active.count(),
        overdue=active.filter(Exists(late)).count(),
        lead_time_s=_distribution(ended, Seconds(F("completed_at"), F("created_at"))),
        within_sla_ratio=(round(sla["kept"] / sla["with_sla"], 4) if sla["with_sla"] else None),
        with_sla=sla["with_sla"],
        kept=sla["kept"],
        throughput=sorted(weekly.items()),
    )


def insights_overview_by_workflow(*, period: Period, now: datetime) -> list[tuple[str, Overview]]:
    """One overview per workflow key that has any request, by key."""
    keys = sorted(set(WorkflowDefinition.objects.values_list("key", flat=True)))
    return [(key, insights_overview(scope=Scope(period, key), now=now)) for key in keys]


def insights_overview_total(
    parts: Sequence[Overview], *, period: Period, now: datetime
) -> Overview:
    """All workflows together: the per-workflow counts added up (every request belongs to one
    workflow), the lead-time percentiles computed again over all ended requests."""
    weekly: dict[date, int] = {}
    for part in parts:
        for week, n in part.throughput:
            weekly[week] = weekly.get(week, 0) + n
    with_sla = sum(p.with_sla for p in parts)
    kept = sum(p.kept for p in parts)
    ended = WorkflowInstance.objects.filter(
        status__in=ENDED, completed_at__gte=period.since, completed_at__lt=period.until
    )
    return Overview(
        started=sum(p.started for p in parts),
        completed=sum(p.completed for p in parts),
        rejected=sum(p.rejected for p in parts),
        withdrawn=sum(p.withdrawn for p in parts),
        cancelled=sum(p.cancelled for p in parts),
        failed=sum(p.failed for p in parts),
        open=sum(p.open for p in parts),
        overdue=sum(p.overdue for p in parts),
        lead_time_s=_distribution(ended, Seconds(F("completed_at"), F("created_at"))),
        within_sla_ratio=round(kept / with_sla, 4) if with_sla else None,
        with_sla=with_sla,
        kept=kept,
        throughput=sorted(weekly.items()) or [(w, 0) for w in _weeks(period)],
    )


# ----- per step


@dataclass
class StepFigures:
    state: str
    visits: int = 0
    tasks: int = 0
    wait_p50_s: float | None = None
    wait_p90_s: float | None = None
    decide_p50_s: float | None = None
    decide_p90_s: float | None = None
    time_in_state_p50_s: float | None = None
    breaches: int = 0
    reminders: int = 0
    escalations: int = 0
    reworks: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def _visits(scope: Scope, now: datetime) -> QuerySet[Any]:
    """One row per state visit (instance, state, visit) whose tasks opened in the period.

    A visit is whole when one of its tasks is an original (no `previous`): delegations and
    escalations of a visit that opened before the period do not count as visits of it. A
    decided task is closed at the moment of its decision (services/task_work.py), so the last
    decision of a visit is its last `closed_at` among tasks done: no join with the decisions."""
    period = scope.period
    tasks = scope.tasks().filter(
        kind=TaskKind.DECISION, created_at__gte=period.since, created_at__lt=period.until
    )
    return (
        tasks.values("state", "instance_id", "visit")
        .annotate(live=Count("id", filter=Q(status__in=LIVE_TASK_STATUSES)))
        .annotate(
            roots=Count("id", filter=Q(previous__isnull=True)),
            n_tasks=Count("id"),
            wait_s=Seconds(Min("claimed_at"), Min("created_at")),
            decide_s=Seconds(Max("closed_at", filter=Q(status=TaskStatus.DONE)), Min("claimed_at")),
            in_state_s=Case(
                When(live=0, then=Seconds(Max("closed_at"), Min("created_at"))),
                default=None,
                output_field=FloatField(),
            ),
            breached=Max(
                Case(When(_breach_q(now), then=Value(1)), default=Value(0)),
                output_field=IntegerField(),
            ),
            n_escalations=Count("id", filter=Q(status=TaskStatus.ESCALATED)),
        )
        .filter(roots__gt=0)
        .order_by()
    )


def _reminders(scope: Scope) -> dict[str, int]:
    """Reminders sent in the period, per state: the trail's `task.reminded` events (a task's
    own counter is copied into its successor when it is delegated, so it would count twice)."""
    period = scope.period
    events = AuditEvent.objects.filter(
        event="task.reminded", at__gte=period.since, at__lt=period.until
    )
    if scope.workflow is not None:
        events = events.filter(instance__workflow_key=scope.workflow)
        if scope.version is not None:
            events = events.filter(instance__definition__version=scope.version)
    return dict(events.values_list("to_state").annotate(n=Count("id")).order_by())


STEP_COLUMNS = (
    "visits",
    "tasks",
    "wait_p50_s",
    "wait_p90_s",
    "decide_p50_s",
    "decide_p90_s",
    "time_in_state_p50_s",
    "breaches",
    "escalations",
    "reworks",
)


def insights_steps(*, scope: Scope, now: datetime) -> list[StepFigures]:
    """For each state with a task, over the visits opened in the period: how long the work
    waited to be claimed, how long a decision took once claimed, the whole time in the state,
    breaches, reminders and escalations, the visits that came back (rework), and the decisions
    by event."""
    visits = _visits(scope, now)
    steps: dict[str, StepFigures] = {}
    if has_percentiles():
        sql, params = visits.query.sql_with_params()
        pc = "percentile_cont({}) WITHIN GROUP (ORDER BY {})".format
        outer = (
            "SELECT state, COUNT(*), SUM(n_tasks), "
            f"{pc(0.5, 'wait_s')}, {pc(0.9, 'wait_s')}, "
            f"{pc(0.5, 'decide_s')}, {pc(0.9, 'decide_s')}, {pc(0.5, 'in_state_s')}, "
            # Rework: visits of a state beyond each request's first one in the period.
            "SUM(breached), SUM(n_escalations), COUNT(*) - COUNT(DISTINCT instance_id) "
            f"FROM ({sql}) AS visits GROUP BY state"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            # The visits are sorted to be grouped: in memory rather than in temporary files.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            cursor.execute(outer, params)
            for row in cursor.fetchall():
                figures = StepFigures(row[0])
                for name, value in zip(STEP_COLUMNS, row[1:], strict=True):
                    setattr(figures, name, _round(value) if name.endswith("_s") else int(value))
                steps[row[0]] = figures
    else:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in visits:
            grouped[row["state"]].append(row)
        for state, rows in grouped.items():
            steps[state] = _steps_in_python(state, rows)
    for state, n in _reminders(scope).items():
        if state in steps:
            steps[state].reminders = n
    decisions = (
        Decision.objects.filter(task__in=_tasks_of_visits(scope))
        .values_list("task__state", "event")
        .annotate(n=Count("id"))
        .order_by()
    )
    for state, event, n in decisions:
        if state in steps:
            steps[state].outcomes[event] = n
    for figures in steps.values():
        figures.outcomes = dict(sorted(figures.outcomes.items()))
    return [steps[s] for s in sorted(steps)]


def _tasks_of_visits(scope: Scope) -> QuerySet[Task]:
    period = scope.period
    return scope.tasks().filter(
        kind=TaskKind.DECISION, created_at__gte=period.since, created_at__lt=period.until
    )


def _steps_in_python(state: str, rows: list[dict[str, Any]]) -> StepFigures:
    def values(name: str) -> list[float]:
        return [r[name] for r in rows if r[name] is not None]

    return StepFigures(
        state=state,
        visits=len(rows),
        tasks=sum(r["n_tasks"] for r in rows),
        wait_p50_s=_round(percentile(values("wait_s"), 0.5)),
        wait_p90_s=_round(percentile(values("wait_s"), 0.9)),
        decide_p50_s=_round(percentile(values("decide_s"), 0.5)),
        decide_p90_s=_round(percentile(values("decide_s"), 0.9)),
        time_in_state_p50_s=_round(percentile(values("in_state_s"), 0.5)),
        breaches=sum(r["breached"] for r in rows),
        escalations=sum(r["n_escalations"] for r in rows),
        reworks=len(rows) - len({r["instance_id"] for r in rows}),
    )


# ----- transitions (for the heat map)


def insights_transitions(*, scope: Scope) -> dict[tuple[str, str], int]:
    """How many times each transition (from state → to state) was taken in the period,
    read from the audit trail's `transition` events."""
    period = scope.period
    events = AuditEvent.objects.filter(
        event="transition", at__gte=period.since, at__lt=period.until
    )
    if scope.workflow is not None:
        events = events.filter(instance__workflow_key=scope.workflow)
        if scope.version is not None:
            events = events.filter(instance__definition__version=scope.version)
    return {
        (source, target): n
        for source, target, n in events.values_list("from_state", "to_state")
        .annotate(n=Count("id"))
        .order_by()
    }


def insights_waiting(*, workflow: str, state: str, limit: int = 50) -> list[dict[str, Any]]:
    """The requests waiting in a state now (a live task there), oldest wait first."""
    tasks = (
        Task.objects.filter(
            definition__key=workflow,
            state=state,
            status__in=LIVE_TASK_STATUSES,
            instance__status=InstanceStatus.ACTIVE,
        )
        .values("instance_id", "instance__title", "instance__business_key")
        .annotate(since=Min("created_at"), due=Min("due_at"))
        .order_by("since", "instance_id")[:limit]
    )
    return [
        {
            "id": row["instance_id"],
            "title": row["instance__title"],
            "reference": row["instance__business_key"],
            "waiting_since": row["since"],
            "due_at": row["due"],
        }
        for row in tasks
    ]


# ----- workload


@dataclass
class Workload:
    by_role: list[dict[str, Any]]
    by_person: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    weeks: list[date]
    covering: list[dict[str, Any]]


def _person(username: str | None, first: str | None, last: str | None) -> str:
    full = f"{first or ''} {last or ''}".strip()
    return f"{full} ({username})" if full else (username or "")


def insights_workload(*, scope: Scope, now: datetime) -> Workload:
    """Live tasks now, per role offered and per person holding them, with those past due;
    decisions per person per week of the period; who decided for an absent colleague."""
    ids = scope.definition_ids()
    live = scope.tasks(ids).filter(status__in=LIVE_TASK_STATUSES)
    by_role = [
        {"role": role or "(the requester)", "open": n, "overdue": late}
        for role, n, late in live.values_list("candidate_groups__name")
        .annotate(
            n=Count("id", distinct=True), late=Count("id", filter=Q(due_at__lt=now), distinct=True)
        )
        .order_by("-n", "candidate_groups__name")
    ]
    by_person = [
        {"person": _person(u, f, last), "open": n, "overdue": late}
        for u, f, last, n, late in live.filter(assignee__isnull=False)
        .values_list("assignee__username", "assignee__first_name", "assignee__last_name")
        .annotate(n=Count("id"), late=Count("id", filter=Q(due_at__lt=now)))
        .order_by("-n", "assignee__username")
    ]
    period = scope.period
    decided = Decision.objects.filter(
        decided_at__gte=period.since, decided_at__lt=period.until, task__kind=TaskKind.DECISION
    )
    if ids is not None:
        decided = decided.filter(task__definition_id__in=ids)
    weeks = _weeks(period)
    people: dict[str, dict[date, int]] = defaultdict(lambda: dict.fromkeys(weeks, 0))
    for u, f, last, week, n in (
        decided.annotate(week=TruncWeek("decided_at"))
        .values_list("actor__username", "actor__first_name", "actor__last_name", "week")
        .annotate(n=Count("id"))
        .order_by()
    ):
        row = people[_person(u, f, last)]
        monday = _week_of(week)
        row[monday] = row.get(monday, 0) + n
    decisions = [
        {"person": name, "weeks": [counts.get(w, 0) for w in weeks], "total": sum(counts.values())}
        for name, counts in sorted(
            people.items(), key=lambda item: (-sum(item[1].values()), item[0])
        )
    ]
    covering: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"decided": 0, "holding": 0}
    )
    for u, f, last, au, af, al, n in (
        decided.filter(on_behalf_of__isnull=False)
        .values_list(
            "actor__username",
            "actor__first_name",
            "actor__last_name",
            "on_behalf_of__username",
            "on_behalf_of__first_name",
            "on_behalf_of__last_name",
        )
        .annotate(n=Count("id"))
        .order_by()
    ):
        covering[(_person(u, f, last), _person(au, af, al))]["decided"] += n
    for u, f, last, au, af, al, n in (
        live.filter(on_behalf_of__isnull=False, assignee__isnull=False)
        .values_list(
            "assignee__username",
            "assignee__first_name",
            "assignee__last_name",
            "on_behalf_of__username",
            "on_behalf_of__first_name",
            "on_behalf_of__last_name",
        )
        .annotate(n=Count("id"))
        .order_by()
    ):
        covering[(_person(u, f, last), _person(au, af, al))]["holding"] += n
    return Workload(
        by_role=by_role,
        by_person=by_person,
        decisions=decisions,
        weeks=weeks,
        covering=[
            {"person": person, "for": absent, **counts}
            for (person, absent), counts in sorted(covering.items())
        ],
    )


# ----- the API's shape


def insights_summary(*, scope: Scope, now: datetime) -> dict[str, Any]:
    """The figures of GET /api/v1/insights/<key>/, with the issue's field names."""
    overview = insights_overview(scope=scope, now=now)
    return {
        "workflow": scope.workflow,
        "version": scope.version,
        "since": scope.period.since.isoformat(),
        "until": scope.period.until.isoformat(),
        "started": overview.started,
        "completed": overview.completed,
        "rejected": overview.rejected,
        "withdrawn": overview.withdrawn,
        "cancelled": overview.cancelled,
        "open": overview.open,
        "overdue": overview.overdue,
        "lead_time_s": overview.lead_time_s,
        "within_sla_ratio": overview.within_sla_ratio,
        "steps": [step_summary(s) for s in insights_steps(scope=scope, now=now)],
    }


def step_summary(step: StepFigures) -> dict[str, Any]:
    return {
        "state": step.state,
        "tasks": step.tasks,
        "wait_p50_s": step.wait_p50_s,
        "decide_p50_s": step.decide_p50_s,
        "decide_p90_s": step.decide_p90_s,
        "breaches": step.breaches,
        "reminders": step.reminders,
        "escalations": step.escalations,
        "reworks": step.reworks,
        "outcomes": step.outcomes,
    }


def workflow_keys() -> list[str]:
    return sorted(set(WorkflowDefinition.objects.values_list("key", flat=True)))


def versions_of(workflow: str) -> list[int]:
    return list(
        WorkflowDefinition.objects.filter(key=workflow)
        .order_by("version")
        .values_list("version", flat=True)
    )
