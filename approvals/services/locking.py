"""The one lock helper: every write to an instance starts here, inside transaction.atomic()."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from approvals.models import Task, WorkflowInstance
from approvals.services.errors import NotAllowed


def lock_instance(
    *, instance_id: int | None = None, task_id: int | None = None
) -> WorkflowInstance:
    """The instance row, locked until the transaction ends (invariant 2).

    On PostgreSQL this is SELECT ... FOR UPDATE; on SQLite the IMMEDIATE transaction already
    holds the database write lock, which serialises writers the same way.
    """
    assert transaction.get_connection().in_atomic_block, "lock_instance needs transaction.atomic()"
    queryset = WorkflowInstance.objects.select_for_update(of=("self",)).select_related(
        "definition", "requester"
    )
    lookup = {"tasks__id": task_id} if task_id is not None else {"pk": instance_id}
    try:
        return _get_locked(queryset, lookup)
    except WorkflowInstance.DoesNotExist:
        # The same answer for "missing" and "not yours": existence must not leak.
        raise NotAllowed("no such task" if task_id is not None else "no such request") from None


def lock_instances(*, instance_ids: list[int]) -> dict[int, WorkflowInstance]:
    """Several instance rows, locked in the order of their ids (so two such callers never
    deadlock), by id; those that do not exist are missing from the answer."""
    assert transaction.get_connection().in_atomic_block, "lock_instances needs atomic()"
    rows = (
        WorkflowInstance.objects.select_for_update(of=("self",))
        .select_related("definition", "requester")
        .filter(pk__in=instance_ids)
        .order_by("pk")
    )
    return {instance.pk: instance for instance in rows}


def _get_locked(queryset: Any, lookup: dict[str, Any]) -> Any:
    """The row a locking query finds, asked twice before it is missing.

    After waiting for another transaction's lock, PostgreSQL re-checks the row it locks
    against the query, but with the related rows it joined before the wait, which it does not
    lock: when that transaction changed a foreign key the query follows (a migration moves the
    request to another definition version), the re-check fails and the row is skipped, unlocked,
    as if it did not exist. A second statement reads it afresh, as committed.
    """
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        return queryset.get(**lookup)


def lock_task(*, task_id: int, actor: Any = None) -> tuple[WorkflowInstance, Task]:
    """A task and its instance in one query, both locked until the transaction ends, with
    whether `actor` is in one of the task's roles (`actor_is_candidate`) and whether four eyes
    keep them from it (`actor_is_excluded`).

    The instance is locked first (FOR UPDATE OF lists it first, and PostgreSQL locks in that
    order), as every writer does, so this never deadlocks with one that locked the instance and
    then updates its tasks. Locking the task row too is what makes its columns the committed
    ones: after waiting for a lock, PostgreSQL re-reads the rows it locks, and only those.
    """
    assert transaction.get_connection().in_atomic_block, "lock_task needs transaction.atomic()"
    actor_id = getattr(actor, "pk", None)
    candidate = Task.candidate_groups.through.objects.filter(
        task_id=OuterRef("pk"), group__user=actor_id
    )
    excluded = Task.excluded_users.through.objects.filter(task_id=OuterRef("pk"), user=actor_id)
    queryset = (
        Task.objects.select_for_update(of=("instance", "self"))
        .select_related("instance__definition", "instance__requester", "assignee")
        .annotate(actor_is_candidate=Exists(candidate), actor_is_excluded=Exists(excluded))
    )
    try:
        task = _get_locked(queryset, {"pk": task_id})
    except Task.DoesNotExist:
        raise NotAllowed("no such task") from None
    return task.instance, task


def try_lock_task(*, task_id: int) -> tuple[WorkflowInstance, Task] | None:
    """Like lock_task, for background sweeps (one query, the instance locked first, the task's
    columns the committed ones): None when another transaction holds either row (SKIP
    LOCKED) or the task is gone, as try_lock_instance."""
    return try_lock_tasks(task_ids=[task_id]).get(task_id)


def try_lock_tasks(*, task_ids: list[int]) -> dict[int, tuple[WorkflowInstance, Task]]:
    """try_lock_task for several tasks in one query: those it could lock, by id. Two tasks of
    one request come with two copies of its row; a caller changes the request through one."""
    assert transaction.get_connection().in_atomic_block, "try_lock_tasks needs atomic()"
    tasks = (
        Task.objects.select_for_update(of=("instance", "self"), skip_locked=True)
        .select_related("instance__definition", "assignee")
        .filter(pk__in=task_ids)
        .order_by()
    )
    return {task.pk: (task.instance, task) for task in tasks}


def try_lock_instance(*, instance_id: int) -> WorkflowInstance | None:
    """Like lock_instance, for background sweeps: None when another transaction holds the row
    (SELECT ... FOR UPDATE SKIP LOCKED), so two sweepers never wait on, or redo, each other's
    item; the next sweep finds it again if it is still due. None also when the row is gone."""
    assert transaction.get_connection().in_atomic_block, "try_lock_instance needs atomic()"
    queryset = WorkflowInstance.objects.select_for_update(
        of=("self",), skip_locked=True
    ).select_related("definition")
    return queryset.filter(pk=instance_id).first()


def lock_live_children(*, parent_id: int, state: str) -> list[WorkflowInstance]:
    """The active sub-requests one step of a request started, locked, in id order. Always
    taken after the parent's own lock (parents lock their children, a child never locks its
    parent in the same transaction: it tells it through the outbox), so this cannot deadlock."""
    assert transaction.get_connection().in_atomic_block, "lock_live_children needs atomic()"
    return list(
        WorkflowInstance.objects.select_for_update(of=("self",))
        .select_related("definition", "requester")
        .filter(parent_id=parent_id, parent_state=state, status="active")
        .order_by("pk")
    )
