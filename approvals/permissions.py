"""Who may see and do what. Rules are evaluated at the time of the action (role membership and
out-of-office cover now, not when the task was created), and used both by services (to refuse)
and pages (to show).

Viewing a request: its requester; the people who took part, recorded as django-guardian object
permissions (`InstanceUserPermission`) when they claim, decide, delegate or are handed a task;
members of a live task's roles and whoever covers for them; admins.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.absences import covered_user_ids, local_day
from approvals.machine.words import event_label
from approvals.models import (
    LIVE_TASK_STATUSES,
    Decision,
    InstanceUserPermission,
    Task,
    WorkflowInstance,
)

VIEW_INSTANCE = "view_workflowinstance"


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


def sees_everything(user: Any) -> bool:
    return user.is_superuser or user.has_perm(f"approvals.{VIEW_INSTANCE}")


def today() -> date:
    return local_day(timezone.now())


def visible_instances_q(user: Any, day: date | None = None) -> Q:
    """The instances a user may view (see the module docstring)."""
    if sees_everything(user):
        return Q()
    took_part = InstanceUserPermission.objects.filter(
        content_object=OuterRef("pk"), user=user, permission__codename=VIEW_INSTANCE
    )
    acting_for = {user.pk, *covered_user_ids(user, day or today())}
    live = Task.objects.filter(instance=OuterRef("pk"), status__in=LIVE_TASK_STATUSES)
    may_act = live.filter(Q(candidate_groups__user__in=acting_for) | Q(assignee__in=acting_for))
    return Q(requester=user) | Q(Exists(took_part)) | Q(Exists(may_act))


def can_view_instance(user: Any, instance: WorkflowInstance) -> bool:
    if not is_active_user(user):
        return False
    if instance.requester_id == user.pk or sees_everything(user):
        return True
    return WorkflowInstance.objects.filter(visible_instances_q(user), pk=instance.pk).exists()


def can_view_task(user: Any, task: Task) -> bool:
    """Viewers of the request, and whoever the task was given or offered to, even after it
    closed: a reviewer whose colleague decided first is told who did instead of getting a 404."""
    if not is_active_user(user):
        return False
    # The task's own people first (its roles prefetched where the caller did): no query.
    if user.pk in (task.assignee_id, task.delegated_by_id) or any(
        group.pk in role_ids(user) for group in task.candidate_groups.all()
    ):
        return True
    return can_view_instance(user, task.instance)


def covering_for(user: Any, task: Task, instance: WorkflowInstance, day: date) -> int | None:
    """The absent user on whose behalf `user` may act on this task, when only cover allows it."""
    covered = covered_user_ids(user, day)
    if task.forbid_requester:
        covered = covered - {instance.requester_id}
    if not covered or task.for_requester:
        return None
    if task.assignee_id is not None:
        return task.assignee_id if task.assignee_id in covered else None
    return (
        Task.candidate_groups.through.objects.filter(task_id=task.pk, group__user__in=covered)
        .values_list("group__user", flat=True)
        .first()
    )


def task_refusal(
    user: Any, task: Task, instance: WorkflowInstance, day: date | None = None
) -> str | None:
    """Why `user` may not act on this live task, or None when they may."""
    if not is_active_user(user):
        return "sign in to act on tasks"
    # Annotated by the services' lock_task for the actor, as actor_is_candidate below.
    four_eyes = four_eyes_refusal(user, task, excluded=getattr(task, "actor_is_excluded", None))
    if four_eyes:
        return four_eyes  # before any other reason: covering for someone does not lift it
    day = day or today()
    if task.assignee_id is not None:
        if task.assignee_id == user.pk or covering_for(user, task, instance, day):
            return None
        return f"this task is assigned to {task.assignee}"
    if task.for_requester:
        return "this task is for the requester"
    if task.forbid_requester and instance.requester_id == user.pk:
        return "you cannot decide on your own request"
    is_candidate = getattr(task, "actor_is_candidate", None)  # annotated by the services
    if is_candidate is None:
        is_candidate = task.candidate_groups.filter(pk__in=role_ids(user)).exists()
    if not is_candidate and not covering_for(user, task, instance, day):
        return "you are not in a role this task is offered to"
    return None


def four_eyes_refusal(
    user: Any, task: Task, *, who: str = "you", excluded: bool | None = None
) -> str | None:
    """Why `user` may not decide `task` because they decided a step of the request it is
    segregated from (four eyes), naming that decision; None when they may. `excluded`, where
    the caller already knows whether the task is kept from them, spares the query."""
    if excluded is None:
        excluded = task.excluded_users.filter(pk=user.pk).exists()
    if not excluded:
        return None
    earlier = (
        Decision.objects.filter(task__instance_id=task.instance_id, actor=user)
        .exclude(task__state=task.state)
        .select_related("task")
        .order_by("-decided_at")
        .first()
    )
    step = f"“{earlier.task.label}” ({event_label(earlier.event)})" if earlier else "a step"
    return f"{who} decided {step} of this request; another person must decide this step (four eyes)"
