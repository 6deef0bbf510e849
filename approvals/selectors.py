"""Reads for the pages: the inbox, a request's timeline, who it waits on, what a user may do.

Writes live in `approvals/services/`; nothing here changes a row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import Exact
from django.utils.safestring import SafeString, mark_safe

from accounts.absences import covered_user_ids, local_day
from approvals.formatting import field_value, moment
from approvals.machine.config import CALLBACK_SRC, field_label, form_fields
from approvals.machine.statechart import GuardError, Statechart
from approvals.machine.words import event_label, refusal
from approvals.models import (
    LIVE_TASK_STATUSES,
    Comment,
    Decision,
    DefinitionStatus,
    FailedAction,
    FailedActionResolution,
    InstanceStatus,
    OutboxMessage,
    OutboxStatus,
    StepAttempt,
    Task,
    TaskStatus,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.permissions import (
    can_view_instance,
    role_ids,
    task_refusal,
    visible_instances_q,
)
from approvals.services.automated_steps import INVOKE, step_is_current, step_key
from approvals.services.definitions import definition_config, statechart_for
from approvals.services.task_work import EVENTS_NEEDING_COMMENT

TABS = {
    "mine": "Assigned to me",
    "queue": "My roles' queue",
    "delegated": "Delegated to me",
    "overdue": "Overdue",
    "done": "Done by me",
}
SORTS = {"due": "Due date", "age": "Oldest first", "-age": "Newest first"}
# Sorting by a key column: "col:amount" (ascending) or "-col:amount", while the inbox shows one
# workflow, whose inbox_columns name the field.
COLUMN_SORT = re.compile(r"(-?)col:(.{1,100})")
# A key column's text is cut here.
COLUMN_TEXT = 60
# "Due soon" badge: due within this window.
DUE_SOON = timedelta(hours=24)
# Tab counts stop here ("99+"): an exact count of a huge queue costs more than it tells, and
# at a million tasks even a count stopped at 1,000 costs more than the page (bench/inbox.py).
COUNT_CAP = 99


@dataclass(frozen=True)
class InboxFilters:
    workflow: str = ""
    state: str = ""
    requester: str = ""
    q: str = ""
    sort: str = "due"

    @property
    def active(self) -> bool:
        return bool(self.workflow or self.state or self.requester or self.q)


def tab_q(user: Any, tab: str, now: datetime) -> Q:
    """Which live tasks a tab holds, as a filter on Task.

    Shaped for PostgreSQL at a million tasks (bench/inbox.py, docs/benchmarks.md): every tab
    walks a small partial index of live tasks in due-date order and stops at the page or the
    count cap, so its cost follows the page, not the table.
    """
    covered = covered_user_ids(user, local_day(now))
    mine = Q(assignee=user, delegated_by__isnull=True)
    delegated = Q(assignee=user, delegated_by__isnull=False) | Q(assignee__in=covered)
    through = Task.candidate_groups.through.objects.filter(task_id=OuterRef("pk"))
    roles = role_ids(user)
    if covered:
        offered = through.filter(Q(group_id__in=roles) | Q(group__user__in=covered))
    else:
        offered = through.filter(group_id__in=roles)
    # The requester's own requests by id (a handful, hashed once) rather than a join to every
    # candidate task's request.
    own = WorkflowInstance.objects.filter(requester=user).values("pk")
    # Neither the requester's own requests nor a step they may not decide (four eyes).
    excluded = Task.excluded_users.through.objects.filter(task_id=OuterRef("pk"), user=user)
    not_own = ~Q(forbid_requester=True, instance__in=own) & ~Q(Exists(excluded))
    if tab == "mine":
        return mine
    if tab == "delegated":
        return delegated
    if tab == "queue":
        return Q(status=TaskStatus.OPEN, for_requester=False) & Q(Exists(offered)) & not_own
    if tab == "overdue":
        # Under an OR PostgreSQL would hash every task id of the user's roles (200,000 rows at
        # a million tasks) before the first row; the outer column inside the subquery keeps it
        # a probe of the candidate-role index per overdue task, stopping at the page.
        offered_open = offered.filter(Exact(OuterRef("status"), TaskStatus.OPEN))
        queue = Q(for_requester=False) & Q(Exists(offered_open)) & not_own
        return Q(due_at__lt=now) & (mine | delegated | queue)
    raise ValueError(f"unknown tab {tab!r}")


def _filtered(tasks: QuerySet[Task], filters: InboxFilters) -> QuerySet[Task]:
    if filters.workflow:
        tasks = tasks.filter(definition__key=filters.workflow)
    if filters.state:
        tasks = tasks.filter(state=filters.state)
    if filters.requester:
        tasks = tasks.filter(instance__requester__username=filters.requester)
    if filters.q:
        # One column, lower case on both sides: on PostgreSQL the live tasks' trigram index
        # (task_live_search_trgm) answers it; elsewhere it is a plain LIKE.
        tasks = tasks.filter(search_text__contains=filters.q.lower())
    return tasks


def _base(user: Any, tab: str, filters: InboxFilters, now: datetime) -> QuerySet[Task]:
    if tab == "done":
        tasks = Task.objects.filter(decision__actor=user)
    elif tab == "queue":
        # Open tasks only, which are live: a second test of the status would make PostgreSQL
        # count the same condition twice, guess a tiny queue and sort all of it.
        tasks = Task.objects.filter(tab_q(user, tab, now))
    else:
        tasks = Task.objects.filter(tab_q(user, tab, now), status__in=LIVE_TASK_STATUSES)
    return _filtered(tasks, filters)


@dataclass(frozen=True)
class Column:
    """A form field the inbox shows as a column (a definition's `inbox_columns`)."""

    name: str
    label: str
    schema: Mapping[str, Any]

    def text(self, context: Mapping[str, Any]) -> str:
        return column_text(self.name, self.schema, context)


def columns_of(definition: WorkflowDefinition) -> list[Column]:
    form = definition.form_schema or {}
    fields = form_fields(form)
    return [
        Column(name, field_label(form, name), fields.get(name) or {})
        for name in definition.inbox_columns or []
    ]


def workflow_columns(key: str) -> list[Column]:
    """The key columns of a workflow's published version (none for an unknown key)."""
    definition = (
        WorkflowDefinition.objects.filter(key=key, status=DefinitionStatus.PUBLISHED)
        .only("form_schema", "inbox_columns")
        .first()
    )
    return columns_of(definition) if definition is not None else []


def column_sort(sort: str) -> tuple[str, bool] | None:
    """(field, descending) for a key-column sort, else None."""
    match = COLUMN_SORT.fullmatch(sort)
    return (match.group(2), match.group(1) == "-") if match else None


def column_text(name: str, schema: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """A field's value as a short text for a column, as the request card shows it (enum
    titles, numbers grouped with their currency, dates spelt out), cut to COLUMN_TEXT."""
    text = field_value(name, context.get(name), {"properties": {name: schema}}, context) or ""
    return text if len(text) <= COLUMN_TEXT else text[: COLUMN_TEXT - 1].rstrip() + "…"


def inbox_tasks(user: Any, tab: str, filters: InboxFilters, now: datetime) -> QuerySet[Task]:
    """One tab's rows, ready to render (one query per page whatever its size). A key-column
    sort applies only where the view let it through (`filters.sort`)."""
    tasks = _base(user, tab, filters, now).select_related(
        "instance__definition",
        "instance__requester",
        "assignee",
        "on_behalf_of",
        "delegated_by",
    )
    if tab == "done":
        return tasks.select_related("decision").order_by("-decision__decided_at", "-pk")
    by_column = column_sort(filters.sort)
    if by_column is not None:
        name, descending = by_column
        value = KeyTransform(name, "instance__context")
        order = value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)
        return tasks.order_by(order, F("due_at").asc(nulls_last=True), "pk")
    if filters.sort == "age":
        return tasks.order_by("created_at", "pk")
    if filters.sort == "-age":
        return tasks.order_by("-created_at", "-pk")
    return tasks.order_by(F("due_at").asc(nulls_last=True), "created_at", "pk")


WORK_TABS = ("mine", "queue", "delegated", "overdue")


def first_tab_with_work(user: Any, filters: InboxFilters, now: datetime) -> str:
    """Where the inbox opens when no tab is asked for: the first tab that holds a task."""
    for tab in WORK_TABS:
        if _base(user, tab, filters, now).exists():
            return tab
    return "mine"


def rows_after(
    user: Any, tab: str, filters: InboxFilters, now: datetime, *, task: Task, start: int, size: int
) -> list[int]:
    """The ids listed after `task` on its inbox page (rows start to start + size): read before
    the task is decided, so that "open next" can go on down the list from there."""
    if tab not in WORK_TABS:
        return []
    ids = list(
        inbox_tasks(user, tab, filters, now).values_list("pk", flat=True)[start : start + size]
    )
    return ids[ids.index(task.pk) + 1 :] if task.pk in ids else []


def next_task(
    user: Any, tab: str, filters: InboxFilters, now: datetime, *, after: Task, listed: list[int]
) -> Task | None:
    """The task to open after deciding `after`: the first of the rows that were listed after it
    (`rows_after`) that is still in the tab, else the tab's first row. Never the decided
    request's: its sibling tasks wait on other people."""
    if tab not in WORK_TABS:
        return None
    rows = inbox_tasks(user, tab, filters, now).exclude(instance_id=after.instance_id)
    still = {t.pk: t for t in rows.filter(pk__in=listed)} if listed else {}
    return next((still[pk] for pk in listed if pk in still), None) or rows.first()


def inbox_counts(user: Any, filters: InboxFilters, now: datetime) -> dict[str, int]:
    """Rows per tab under the same filters, each capped at COUNT_CAP + 1.

    Each count stops after COUNT_CAP + 1 rows (SELECT COUNT(*) over a LIMIT). Unfiltered, "done"
    counts the user's decisions alone, one per task, from the decision_actor_decided index.
    """
    counts = {}
    for tab in TABS:
        if tab == "done" and not filters.active:
            rows: QuerySet[Any] = Decision.objects.filter(actor=user)
        else:
            rows = _base(user, tab, filters, now)
        counts[tab] = rows.order_by()[: COUNT_CAP + 1].count()
    return counts


def step_choices(workflow: str) -> list[tuple[str, str]]:
    """The steps a task can wait in, as (state path, label), for the inbox's Step filter: the
    workflow's, or every published workflow's (a path several share lists each label once)."""
    definitions = WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED)
    if workflow:
        definitions = definitions.filter(key=workflow)
    labels: dict[str, list[str]] = {}
    for definition in definitions.order_by("title", "key"):
        for path, state in statechart_for(definition).states.items():
            if state.task is None and state.invoke is None:
                continue
            known = labels.setdefault(path, [])
            if state.label not in known:
                known.append(state.label)
    return [(path, " / ".join(names)) for path, names in labels.items()]


def due_badge(task: Task, now: datetime) -> str:
    if task.due_at is None or not task.is_live:
        return ""
    if task.due_at < now:
        return "overdue"
    if task.due_at < now + DUE_SOON:
        return "due-soon"
    return ""


def state_label(instance: WorkflowInstance, path: str) -> str:
    chart = statechart_for(instance.definition)
    return chart.state(path).label if path in chart.states else path


# ----- one request


@dataclass(frozen=True)
class Relatives:
    """A request's parent and sub-requests, as far as the viewer may see them: seeing one does
    not reveal the other (permissions.can_view_instance)."""

    parent: WorkflowInstance | None
    children: list[WorkflowInstance]


def relatives(user: Any, instance: WorkflowInstance) -> Relatives:
    parent = None
    if instance.parent_id is not None:
        candidate = (
            WorkflowInstance.objects.select_related("definition", "requester")
            .filter(pk=instance.parent_id)
            .first()
        )
        if candidate is not None and can_view_instance(user, candidate):
            parent = candidate
    children = list(
        WorkflowInstance.objects.filter(visible_instances_q(user), parent=instance)
        .select_related("definition")
        .order_by("pk")
    )
    return Relatives(parent=parent, children=children)


def live_tasks(instance: WorkflowInstance) -> list[Task]:
    tasks = list(
        instance.tasks.filter(status__in=LIVE_TASK_STATUSES)
        .select_related("assignee", "on_behalf_of")
        .prefetch_related("candidate_groups")
        .order_by("pk")
    )
    for task in tasks:
        task.instance = instance  # already loaded; spares a query per task
    return tasks


def waiting_by_instance(instances: list[WorkflowInstance]) -> dict[int, list[str]]:
    """Who each request waits on, for a list page (two queries whatever its length)."""
    waiting: dict[int, list[str]] = {}
    tasks = (
        Task.objects.filter(instance__in=instances, status__in=LIVE_TASK_STATUSES)
        .select_related("assignee", "on_behalf_of")
        .prefetch_related("candidate_groups")
        .order_by("pk")
    )
    for task in tasks:
        waiting.setdefault(task.instance_id, []).append(waiting_on(task))
    return waiting


def waiting_on(task: Task) -> str:
    """Who a live task waits on, in words."""
    if task.assignee is not None:
        name = str(task.assignee)
        return f"{name} (for {task.on_behalf_of})" if task.on_behalf_of else name
    roles = ", ".join(group.name for group in task.candidate_groups.all())
    return f"anyone in {roles}" if roles else "nobody (an operator must reassign it)"


def diagram(instance: WorkflowInstance, *, reader: bool = False) -> SafeString:
    """The definition's diagram with where the request is and where it has been: in words
    for the people who follow the request (`reader`), as written for the admin."""
    from approvals.machine.diagram import render_svg

    active = [
        *instance.branches.filter(closed_at__isnull=True).values_list("state", flat=True),
        instance.state,
    ]
    visited = list(instance.audit_events.values_list("to_state", flat=True))
    # The SVG is built by our own code from escaped names (approvals/diagram.py).
    return mark_safe(
        render_svg(
            definition_config(instance.definition),
            active=active,
            visited=visited,
            reader=reader,
        )
    )


@dataclass(frozen=True)
class Choice:
    event: str
    label: str
    needs_comment: bool
    style: str  # primary, danger, secondary


def decision_choices(task: Task) -> list[Choice]:
    """One button per event the task's state accepts and a guard allows now, approving
    first (`unavailable_decisions` says why the others are not offered)."""
    chart = statechart_for(task.instance.definition)
    events = [e for e in chart.state(task.state).on if not _refused(chart, task, e)]
    order = {"APPROVE": 0, "RESUBMIT": 0, "REQUEST_CHANGES": 1, "REJECT": 2, "WITHDRAW": 2}
    events.sort(key=lambda e: order.get(e, 1))
    return [
        Choice(
            event=event,
            label=event_label(event),
            needs_comment=event in EVENTS_NEEDING_COMMENT,
            style="primary"
            if event in {"APPROVE", "RESUBMIT"}
            else ("danger" if event in {"REJECT", "WITHDRAW"} else "secondary"),
        )
        for event in events
    ]


def unavailable_decisions(task: Task) -> list[str]:
    """Why each decision of the step that no guard allows now is not offered, in the
    definition's words ("Approve is not possible now: only when the amount is ...")."""
    chart = statechart_for(task.instance.definition)
    return [r for e in chart.state(task.state).on if (r := _refused(chart, task, e))]


def _refused(chart: Statechart, task: Task, event: str) -> str:
    """'' when the event may be chosen now, else the refusal the engine would give. The
    requester's RESUBMIT is always offered: the edits it carries may be what its guard reads."""
    candidates = chart.state(task.state).on[event]
    if event == "RESUBMIT" or any(t.guard is None for t in candidates):
        return ""
    try:
        if chart.select(candidates, task.instance.context, {}) is not None:
            return ""
    except GuardError:
        pass  # the engine would refuse it too, with the expression's error
    return refusal(
        event,
        [(t.description, t.guard.source if t.guard else None) for t in candidates],
        chart.form,
    )


def may_act(user: Any, task: Task, now: datetime) -> bool:
    return task.is_live and task_refusal(user, task, task.instance, local_day(now)) is None


def decision_of(task: Task) -> Decision | None:
    """The decision that closed this task's step (for "already decided by ...")."""
    return (
        Decision.objects.filter(
            task__instance_id=task.instance_id, task__state=task.state, task__visit=task.visit
        )
        .select_related("actor", "on_behalf_of")
        .order_by("-decided_at")
        .first()
    )


REQUEST_STATUSES = {
    "active": "Active",
    "needs_answer": "Needs my answer",
    "done": "Done",
    "withdrawn": "Withdrawn",
}
ENDED = (
    InstanceStatus.COMPLETED,
    InstanceStatus.REJECTED,
    InstanceStatus.CANCELLED,
    InstanceStatus.FAILED,
)


def my_requests(user: Any, *, q: str = "", status: str = "") -> QuerySet[WorkflowInstance]:
    """The user's requests, newest first: `q` searches title and reference; `status` is one
    of REQUEST_STATUSES ("needs_answer": a task of theirs waits on them, changes requested, or
    a reviewer's question does)."""
    requests = WorkflowInstance.objects.filter(requester=user)
    if q:
        requests = requests.filter(Q(title__icontains=q) | Q(business_key__icontains=q))
    if status == "active":
        requests = requests.filter(status=InstanceStatus.ACTIVE)
    elif status == "needs_answer":
        waiting = Task.objects.filter(
            instance=OuterRef("pk"), for_requester=True, status__in=LIVE_TASK_STATUSES
        )
        asked = Comment.objects.filter(
            instance=OuterRef("pk"), is_question=True, answered_at__isnull=True
        )
        requests = requests.filter(Exists(waiting) | Exists(asked), status=InstanceStatus.ACTIVE)
    elif status == "done":
        requests = requests.filter(status__in=ENDED)
    elif status == "withdrawn":
        requests = requests.filter(status=InstanceStatus.WITHDRAWN)
    elif status:
        raise ValueError(f"unknown request status {status!r}")
    return requests.select_related("definition").order_by("-created_at", "-pk")


def open_questions_by_instance(instances: list[WorkflowInstance]) -> dict[int, int]:
    """Instance id -> how many reviewers' questions on it wait for the requester's answer."""
    return dict(
        Comment.objects.filter(instance__in=instances, is_question=True, answered_at__isnull=True)
        .values("instance")
        .annotate(n=Count("pk"))
        .values_list("instance", "n")
    )


# ----- automated steps, as the request page, the task page and the admin tell them


@dataclass(frozen=True)
class StepProgress:
    """An automated step that has not finished: starting, running, or waiting to retry."""

    label: str  # the state's label
    src: str
    attempt: int  # the attempt running, or the next one
    max_attempts: int
    next_at: datetime | None  # when the next attempt is due, while it waits
    running: bool
    last_error: str
    # A callback step's attempt: until when it waits for the outside system's report.
    report_by: datetime | None = None

    @property
    def summary(self) -> str:
        of = f"attempt {self.attempt} of {self.max_attempts}"
        if self.running and self.report_by is not None:
            return f"waiting for the outside system to report by {moment(self.report_by)}, {of}"
        if self.running:
            return f"running, {of}"
        if self.next_at is None:
            return f"starting, {of}"
        return f"retrying, {of}, next at {moment(self.next_at)}"


def steps_in_progress(instance: WorkflowInstance) -> list[StepProgress]:
    """The request's automated steps still to finish (`invoke`s, with their retry policy)."""
    if not instance.is_active:
        return []
    messages = list(
        OutboxMessage.objects.filter(
            instance=instance, topic=INVOKE, status=OutboxStatus.PENDING
        ).order_by("pk")
    )
    if not messages:
        return []
    logged = dict(
        StepAttempt.objects.filter(message__in=messages)
        .values("message")
        .annotate(n=Count("pk"))
        .values_list("message", "n")
    )
    steps = []
    for message in messages:
        payload = message.payload
        if not step_is_current(instance, payload):
            continue  # its state was left; the worker closes it without running it
        # A claimed attempt not yet recorded is running now (or its worker died: the sweep
        # hands it out again once its lease ends).
        running = message.attempts > logged.get(message.pk, 0)
        waiting = not running and message.attempts > 0
        waits_for_report = running and payload.get("src") == CALLBACK_SRC
        steps.append(
            StepProgress(
                label=state_label(instance, payload["state"]),
                src=str(payload.get("src", "")),
                attempt=message.attempts if running else message.attempts + 1,
                max_attempts=int(payload.get("max_attempts") or 1),
                next_at=message.available_at if waiting else None,
                running=running,
                last_error=message.last_error if message.attempts else "",
                # The attempt's timeout or missed heartbeat: the message is due again then.
                report_by=message.available_at if waits_for_report else None,
            )
        )
    return steps


@dataclass(frozen=True)
class SkippedStep:
    label: str
    by: str
    at: datetime | None


def skipped_steps(instance: WorkflowInstance) -> list[SkippedStep]:
    """Automated steps an operator skipped: the request did not get there cleanly."""
    failures = FailedAction.objects.filter(
        instance=instance, resolution=FailedActionResolution.SKIPPED
    ).select_related("resolved_by")
    return [
        SkippedStep(
            label=state_label(instance, f.state),
            by=str(f.resolved_by) if f.resolved_by else "an operator",
            at=f.resolved_at,
        )
        for f in failures.order_by("resolved_at", "pk")
    ]


def step_attempts(failure: FailedAction) -> list[StepAttempt]:
    """Every attempt of the failed step's visit, oldest first, across the operator's retries."""
    return list(StepAttempt.objects.filter(step=step_key(failure.message)).order_by("at", "pk"))


@dataclass(frozen=True)
class RetryOutcome:
    """What came of an operator's Retry: running, worked, or failed again (and its review)."""

    status: str  # running | done | failed
    at: datetime | None
    error: str
    review: Task | None


def retry_outcome(failure: FailedAction) -> RetryOutcome | None:
    if failure.resolution != FailedActionResolution.RETRIED:
        return None
    message = (
        OutboxMessage.objects.filter(
            instance_id=failure.instance_id, topic=INVOKE, payload__retry_of=failure.pk
        )
        .order_by("pk")
        .first()
    )
    if message is None:
        return None
    last = StepAttempt.objects.filter(message=message).order_by("-pk").first()
    if message.status == OutboxStatus.PENDING:
        return RetryOutcome("running", None, "", None)
    if message.status == OutboxStatus.FAILED:
        again = FailedAction.objects.filter(message=message).select_related("task").first()
        return RetryOutcome(
            "failed",
            last.at if last else None,
            message.last_error,
            again.task if again else None,
        )
    return RetryOutcome("done", last.at if last else message.delivered_at, "", None)


def current_steps(instance: WorkflowInstance) -> list[str]:
    """Where an active request is, in labels: its state, or each open region's state."""
    if not instance.is_active:
        return []
    leaves = list(
        instance.branches.filter(closed_at__isnull=True)
        .order_by("pk")
        .values_list("state", flat=True)
    )
    return [state_label(instance, path) for path in leaves or [instance.state]]


def covering_names(user: Any, tasks: list[Task], now: datetime) -> dict[int, str]:
    """For the tasks that are `user`'s only because they cover for someone away, whom they
    cover for ("Bob Baker"), by task id: assigned to the absent person, or offered only to roles
    the absent person holds. Two queries for a page of tasks, none when covering for nobody."""
    covered = covered_user_ids(user, local_day(now))
    if not covered:
        return {}
    result: dict[int, str] = {}
    offered = [t for t in tasks if t.assignee_id is None and not t.for_requester]
    for task in tasks:
        if task.assignee_id in covered:
            result[task.pk] = str(task.assignee)
    if not offered:
        return result
    groups: dict[int, set[int]] = {}
    for task_id, group_id in Task.candidate_groups.through.objects.filter(
        task_id__in=[t.pk for t in offered]
    ).values_list("task_id", "group_id"):
        groups.setdefault(task_id, set()).add(group_id)
    people: dict[int, list[Any]] = {}
    for person in get_user_model().objects.filter(pk__in=covered).prefetch_related("groups"):
        for group in person.groups.all():
            people.setdefault(group.pk, []).append(person)
    mine = set(role_ids(user))
    for task in offered:
        task_groups = groups.get(task.pk, set())
        if task_groups & mine:
            continue
        names = {
            str(p): None
            for g in sorted(task_groups)
            for p in people.get(g, [])
            if not (task.forbid_requester and p.pk == task.instance.requester_id)
        }
        if names:
            result[task.pk] = ", ".join(names)
    return result


@dataclass(frozen=True)
class Progress:
    """Approvals so far on a step that needs several (rule all, or a quorum)."""

    names: list[str]
    needed: int

    @property
    def text(self) -> str:
        if not self.names:
            return f"No approvals yet; {self.needed} needed"
        return f"{', '.join(self.names)} approved; {len(self.names)} of {self.needed}"


def approval_progress(task: Task) -> Progress | None:
    """'Sam Silva approved; 1 of 2' for a task of a step with rule all, everyone or a quorum."""
    if task.rule == "any" or task.for_requester:
        return None
    chart = statechart_for(task.instance.definition)
    spec = chart.state(task.state).task if task.state in chart.states else None
    if spec is None:
        return None
    visit = {"instance_id": task.instance_id, "state": task.state, "visit": task.visit}
    decisions = Decision.objects.filter(
        task__instance_id=task.instance_id,
        task__state=task.state,
        task__visit=task.visit,
        event="APPROVE",
    ).select_related("actor")
    if spec.rule == "everyone":
        # One task per member when the step opened; delegations are successors of those.
        needed = Task.objects.filter(**visit, previous__isnull=True).count()
    else:
        needed = spec.approvals_needed
    return Progress([str(d.actor) for d in decisions.order_by("decided_at", "pk")], needed)


def decision_before(task: Task) -> Any:
    """The decision that brought the request into this task's step (the audit event: who,
    what, their comment, the fields a resubmission changed), or None."""
    return (
        task.instance.audit_events.filter(event="task.decided", seq__lt=task.visit)
        .select_related("actor")
        .order_by("-seq")
        .first()
    )
