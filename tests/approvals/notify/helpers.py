"""Helpers for notification tests: SLA events as the SLA sweep emits them, read-back helpers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from approvals.models import Notification, Task
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.locking import lock_instance
from tests.approvals.flows import NOW


def emit_sla(task: Task, topic: str, **payload: Any) -> None:
    """What the SLA sweep writes for a reminder or an escalation (task.reminded, task.escalated
    with task, state, assignee, roles, previous, level), through the engine's Run."""
    with transaction.atomic():
        instance = lock_instance(task_id=task.pk)
        run = Run(instance, statechart_for(instance.definition), actor=None, channel="sla", now=NOW)
        run.record(topic, task=task, to_state=task.state, data=payload)
        run.emit(
            topic,
            {
                "task": task.pk,
                "state": task.state,
                "assignee": task.assignee_id,
                "roles": list(task.candidate_groups.values_list("name", flat=True)),
                **payload,
            },
            key=f"{topic}:{task.pk}:{payload.get('level', 0)}",
        )
        run.commit()


def told(user: Any) -> list[tuple[str, str]]:
    """(kind, text) of what a user was told, oldest first."""
    return list(
        Notification.objects.filter(recipient=user).order_by("pk").values_list("kind", "text")
    )
