"""Reads for the API: what a caller may see, and may do now. Writes go through the services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import F, Prefetch, QuerySet

from approvals import selectors as inbox
from approvals.models import (
    LIVE_TASK_STATUSES,
    AuditEvent,
    Branch,
    DefinitionStatus,
    Task,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.permissions import (
    can_operate,
    can_view_instance,
    can_view_task,
    visible_instances_q,
)
from approvals.services.definitions import statechart_for

TASK_SCOPES = ("all", "mine", "queue", "delegated", "overdue")


def startable_definitions(user: Any) -> QuerySet[WorkflowDefinition]:
    """Published definitions; any active user may start a request (instance_start's rule)."""
    return WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED).order_by("key")


def _live_tasks() -> Prefetch:
    return Prefetch(
        "tasks",
        queryset=Task.objects.filter(status__in=LIVE_TASK_STATUSES)
        .select_related("assignee", "delegated_by")
        .prefetch_related("candidate_groups")
        .order_by("created_at", "id"),
        to_attr="live_tasks",
    )


def _with_related(queryset: QuerySet[WorkflowInstance]) -> QuerySet[WorkflowInstance]:
    return queryset.select_related("definition", "requester").prefetch_related(
        _live_tasks(),
        Prefetch(
            "branches",
            queryset=Branch.objects.filter(closed_at__isnull=True),
            to_attr="open_branches",
        ),
    )


def visible_instances(user: Any) -> QuerySet[WorkflowInstance]:
    return _with_related(WorkflowInstance.objects.filter(visible_instances_q(user))).order_by(
        "-created_at", "-id"
    )


def instance_by_id(instance_id: int) -> WorkflowInstance | None:
    return _with_related(WorkflowInstance.objects.filter(pk=instance_id)).first()


def visible_instance(user: Any, instance_id: int) -> WorkflowInstance | None:
    # Read by primary key first, then judged: cheaper than filtering every visible instance.
    instance = instance_by_id(instance_id)
    if instance is None or not can_view_instance(user, instance):
        return None
    return instance


def active_states(instance: WorkflowInstance) -> list[str]:
    """The leaf states it is in: one, or one per region of a parallel state."""
    branches = getattr(instance, "open_branches", None)
    if branches is None:
        branches = list(instance.branches.filter(closed_at__isnull=True))
    if branches and instance.is_active:
        return sorted(b.state for b in branches)
    return [instance.state]


def sendable_events(user: Any, instance: WorkflowInstance) -> list[str]:
    """External events the caller may send now: the rule of services.instance_send_event
    (operators with send_event; events of a human task's state are decided on the task)."""
    if not instance.is_active or not can_operate(user, "send_event"):
        return []
    chart = statechart_for(instance.definition)
    leaves = active_states(instance)
    paths = leaves if leaves == [instance.state] else [*leaves, instance.state]
    states = [chart.state(p) for p in paths]
    decisions = {event for s in states if s.task is not None for event in s.on}
    return [e for e in chart.events_of(paths) if e not in decisions]


def task_decisions(task: Task) -> list[str]:
    return list(statechart_for(task.instance.definition).state(task.state).on)


def history(instance: WorkflowInstance) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(instance=instance).select_related("actor").order_by("seq")


def tasks_for(user: Any, scope: str, now: datetime) -> QuerySet[Task]:
    """Live tasks of a scope, the inbox's tabs (approvals.selectors): mine (assigned to me),
    queue (offered to my roles or those I cover for, unclaimed), delegated (handed to me, or
    assigned to someone I cover for), overdue (any of those, past due); all is mine, delegated
    and queue together."""
    if scope == "all":
        tasks = Task.objects.filter(
            inbox.tab_q(user, "mine", now)
            | inbox.tab_q(user, "delegated", now)
            | inbox.tab_q(user, "queue", now),
            status__in=LIVE_TASK_STATUSES,
        ).select_related("instance__definition", "instance__requester", "assignee")
        tasks = tasks.order_by(F("due_at").asc(nulls_last=True), "created_at", "pk")
    else:
        tasks = inbox.inbox_tasks(user, scope, inbox.InboxFilters(), now)
    return tasks.prefetch_related("candidate_groups")


def visible_task(user: Any, task_id: int) -> Task | None:
    """A task the caller may see (approvals.permissions.can_view_task), or None."""
    task = (
        Task.objects.filter(pk=task_id)
        .select_related("instance__definition", "instance__requester", "assignee", "delegated_by")
        .prefetch_related("candidate_groups")
        .first()
    )
    return task if task is not None and can_view_task(user, task) else None
