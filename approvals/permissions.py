"""Who may see and do what. Rules are evaluated at the time of the action (role membership now,
not when the task was created), and used both by services (to refuse) and pages (to show)."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q

from approvals.models import LIVE_TASK_STATUSES, Decision, Task, WorkflowInstance


def role_ids(user: Any) -> set[int]:
    """The user's group ids, cached on the user object for the request."""
    cached = getattr(user, "_signoff_role_ids", None)
    if cached is None:
        cached = set(user.groups.values_list("pk", flat=True))
        user._signoff_role_ids = cached
    return cached


def is_active_user(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_operate(user: Any, perm: str) -> bool:
    """Operator powers (cancel any request, reassign any task, send external events)."""
    return is_active_user(user) and (user.is_superuser or user.has_perm(f"approvals.{perm}"))


def visible_instances_q(user: Any) -> Q:
    """The instances a user may view: requester, participants, members of a live task's roles."""
    if user.is_superuser or user.has_perm("approvals.view_workflowinstance"):
        return Q()
    took_part = Task.objects.filter(instance=OuterRef("pk")).filter(
        Q(assignee=user) | Q(delegated_by=user)
    )
    decided = Decision.objects.filter(task__instance=OuterRef("pk"), actor=user)
    candidate = Task.objects.filter(
        instance=OuterRef("pk"),
        status__in=LIVE_TASK_STATUSES,
        candidate_groups__in=role_ids(user),
    )
    return Q(requester=user) | Q(Exists(took_part)) | Q(Exists(decided)) | Q(Exists(candidate))


def can_view_instance(user: Any, instance: WorkflowInstance) -> bool:
    if not is_active_user(user):
        return False
    if instance.requester_id == user.pk:
        return True
    return WorkflowInstance.objects.filter(visible_instances_q(user), pk=instance.pk).exists()


def task_refusal(user: Any, task: Task, instance: WorkflowInstance) -> str | None:
    """Why `user` may not act on this live task, or None when they may."""
    if not is_active_user(user):
        return "sign in to act on tasks"
    if task.assignee_id is not None:
        if task.assignee_id == user.pk:
            return None
        return f"this task is assigned to {task.assignee}"
    if task.for_requester:
        return "this task is for the requester"
    if task.forbid_requester and instance.requester_id == user.pk:
        return "you cannot decide on your own request"
    is_candidate = getattr(task, "actor_is_candidate", None)  # annotated by the services
    if is_candidate is None:
        is_candidate = task.candidate_groups.filter(pk__in=role_ids(user)).exists()
    if not is_candidate:
        return "you are not in a role this task is offered to"
    return None
