"""The notification read model: what the messages of one commit refer to (tasks, the request,
roles and their members, people's names), shared by the notifications subscriber, the live
push and the channels (Slack...).

`facts_for` starts from what the run already holds (a `Batch`: the locked instance, the actor,
the tasks it opened or changed and their roles) and reads only the rest: on a decision that
is the members of the roles of the next task. Messages read back from the database (the
embedded default's poll relay) come without a run, and everything is read, with a fixed
number of queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from approvals.machine.statechart import Statechart
from approvals.models import (
    AuditEvent,
    Notification,
    OutboxMessage,
    Task,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.outbox.subscribers import Batch
from approvals.roles import role_members, role_names
from approvals.services.definitions import statechart_for

# Topics a person may be told about, and those that only move live pages (docs/notifications.md).
NOTIFYING_TOPICS = (
    "task.created",
    "task.claimed",
    "task.decided",
    "task.delegated",
    "task.reassigned",
    "task.reminded",
    "task.escalated",
    "instance.completed",
)
LIVE_ONLY_TOPICS = (
    "task.unclaimed",
    "task.cancelled",
    "instance.state_changed",
    "action.failed",
    "action.retrying",
    # A sub-workflow step started a child, or heard of its end: the parent's page lists it.
    "subflow.child_started",
    "subflow.child_ended",
)
TOPICS = NOTIFYING_TOPICS + LIVE_ONLY_TOPICS
# Topics whose recipients are the members of their task's roles.
MEMBERS_TOPICS = frozenset(
    {"task.created", "task.reassigned", "task.reminded", "task.escalated", "task.claimed"}
)

TASK_FIELDS = (
    "id",
    "instance_id",
    "state",
    "label",
    "status",
    "assignee_id",
    "forbid_requester",
    "for_requester",
    "escalation_level",
    "due_at",
    "rule",
)


def display_name(first: str, last: str, username: str) -> str:
    return f"{first} {last}".strip() or username


def user_name(user: Any) -> str:
    return display_name(user.first_name, user.last_name, user.username)


@dataclass
class Facts:
    """What the messages of a batch refer to."""

    tasks: dict[int, dict[str, Any]]
    instances: dict[int, dict[str, Any]]
    task_groups: dict[int, list[int]]
    group_names: dict[int, str]
    members: Mapping[int, AbstractSet[int]]
    names: dict[int, str]
    actors: dict[tuple[int, datetime], int | None]
    cancelled_groups: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    # The definitions of the requests whose decisions are told (for their steps' names).
    charts: dict[int, Statechart] = field(default_factory=dict)

    def step_label(self, instance_id: int, path: str) -> str:
        """A step as the definition names it ("Manager approval")."""
        chart = self.charts.get(instance_id)
        if chart is None or path not in chart.states:
            return path.replace("_", " ").capitalize()
        return chart.state(path).label

    def actor_of(self, message: OutboxMessage) -> int | None:
        payload = message.payload
        if message.topic == "task.decided":
            return payload.get("actor")
        if message.topic == "task.claimed":
            return payload.get("assignee")
        if message.topic == "task.delegated":
            return payload.get("by")
        return self.actors.get((message.instance_id, message.created_at))

    def candidates(self, task_id: int) -> set[int]:
        task = self.tasks.get(task_id)
        if task is None:
            return set()
        if task["assignee_id"] is not None:
            return {task["assignee_id"]}
        users: set[int] = set()
        for group_id in self.task_groups.get(task_id, []):
            users |= self.members.get(group_id, set())
        if task["forbid_requester"]:
            users.discard(self.instances[task["instance_id"]]["requester_id"])
        return users

    def name(self, user_id: int | None) -> str:
        return self.names.get(user_id, "") if user_id is not None else ""


def _task_ids(messages: Iterable[OutboxMessage]) -> set[int]:
    return {m.payload["task"] for m in messages if isinstance(m.payload.get("task"), int)}


def _task_row(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_FIELDS}


def _instance_row(instance: WorkflowInstance) -> dict[str, Any]:
    return {
        "id": instance.pk,
        "title": instance.title,
        "requester_id": instance.requester_id,
        "state": instance.state,
        "status": instance.status,
        "definition__title": instance.definition.title,
        "definition_id": instance.definition_id,
    }


def _loaded(obj: Any, relation: str) -> Any:
    """A related object that is already in memory, else None (never a query)."""
    return obj._state.fields_cache.get(relation) if obj is not None else None


def facts_for(messages: list[OutboxMessage], *, with_members: bool = True) -> Facts:
    batch = messages if isinstance(messages, Batch) else Batch(messages)
    task_ids = _task_ids(batch)
    tasks = {pk: _task_row(task) for pk, task in batch.tasks.items() if pk in task_ids}
    missing_tasks = task_ids - tasks.keys()
    if missing_tasks:
        tasks.update(
            (t["id"], t) for t in Task.objects.filter(pk__in=missing_tasks).values(*TASK_FIELDS)
        )

    instances: dict[int, dict[str, Any]] = {}
    if batch.instance is not None:
        instances[batch.instance.pk] = _instance_row(batch.instance)
    wanted = {m.instance_id for m in batch if m.instance_id}
    wanted |= {t["instance_id"] for t in tasks.values()}
    if wanted - instances.keys():
        instances.update(
            (i["id"], i)
            for i in WorkflowInstance.objects.filter(pk__in=wanted - instances.keys()).values(
                "id",
                "title",
                "requester_id",
                "state",
                "status",
                "definition__title",
                "definition_id",
            )
        )

    task_groups: dict[int, list[int]] = {
        pk: list(batch.task_roles[pk]) for pk in tasks if pk in batch.task_roles
    }
    through = Task.candidate_groups.through
    unknown_roles = tasks.keys() - task_groups.keys()
    if unknown_roles:
        for task_id, group_id in through.objects.filter(task_id__in=unknown_roles).values_list(
            "task_id", "group_id"
        ):
            task_groups.setdefault(task_id, []).append(group_id)
    cancelled_groups: dict[tuple[int, str], list[int]] = {}
    for m in batch:
        if m.topic == "task.cancelled" and m.instance_id:
            key = (m.instance_id, m.payload.get("state", ""))
            rows = through.objects.filter(task__instance_id=key[0], task__state=key[1])
            cancelled_groups[key] = sorted(set(rows.values_list("group_id", flat=True)))
    group_ids = {g for groups in task_groups.values() for g in groups}
    group_names = role_names(group_ids | {g for gs in cancelled_groups.values() for g in gs})

    # Members only of the roles whose people a message may tell (new, reassigned, reminded,
    # escalated tasks; the others in a claimed task's roles).
    told_roles = {
        g
        for m in batch
        if m.topic in MEMBERS_TOPICS and isinstance(m.payload.get("task"), int)
        for g in task_groups.get(m.payload["task"], [])
    }
    members = role_members(told_roles) if with_members and told_roles else {}

    actors = _actors(batch)
    names = _known_names(batch)
    user_ids = {a for a in actors.values() if a} | {
        t["assignee_id"] for t in tasks.values() if t["assignee_id"]
    }
    for m in batch:
        for key in ("actor", "assignee", "by", "to", "on_behalf_of"):
            if isinstance(m.payload.get(key), int):
                user_ids.add(m.payload[key])
    if user_ids - names.keys():
        names.update(
            (u["id"], display_name(u["first_name"], u["last_name"], u["username"]))
            for u in get_user_model()
            .objects.filter(pk__in=user_ids - names.keys())
            .values("id", "first_name", "last_name", "username")
        )
    return Facts(
        tasks=tasks,
        instances=instances,
        task_groups=task_groups,
        group_names=group_names,
        members=members,
        names=names,
        actors=actors,
        cancelled_groups=cancelled_groups,
        charts=_charts(batch, instances),
    )


# Topics whose notifications name a step of the request's definition.
STEP_TOPICS = frozenset({"task.decided", "instance.completed"})


def _charts(batch: Batch, instances: dict[int, dict[str, Any]]) -> dict[int, Statechart]:
    """The statecharts of the requests a decision is told about: the run's own definition,
    else the definitions read in one query (compiled charts are cached per process)."""
    wanted = {m.instance_id for m in batch if m.topic in STEP_TOPICS and m.instance_id}
    if not wanted:
        return {}
    definitions: dict[int, WorkflowDefinition] = {}
    known = _loaded(batch.instance, "definition")
    if known is not None:
        definitions[known.pk] = known
    ids = {instances[i]["definition_id"] for i in wanted if i in instances}
    if ids - definitions.keys():
        definitions.update(
            (d.pk, d) for d in WorkflowDefinition.objects.filter(pk__in=ids - definitions.keys())
        )
    return {
        i: statechart_for(definitions[instances[i]["definition_id"]])
        for i in wanted
        if i in instances and instances[i]["definition_id"] in definitions
    }


def _actors(batch: Batch) -> dict[tuple[int, datetime], int | None]:
    """Who made each message: the run's actor where the batch comes from a run, otherwise the
    audit events written by the same run (same instance, same `now`)."""
    if batch.instance is not None:
        actor_id = getattr(batch.actor, "pk", None)
        return {(m.instance_id, m.created_at): actor_id for m in batch if m.instance_id}
    actors: dict[tuple[int, datetime], int | None] = {}
    moments = {(m.instance_id, m.created_at) for m in batch if m.instance_id}
    if moments:
        latest: dict[tuple[int, datetime], int] = {}
        for instance_id, at, seq, actor_id in AuditEvent.objects.filter(
            instance_id__in={i for i, _ in moments}, at__in={t for _, t in moments}
        ).values_list("instance_id", "at", "seq", "actor_id"):
            key = (instance_id, at)
            if key in moments and seq > latest.get(key, -1):
                latest[key] = seq
                actors[key] = actor_id
    return actors


def _known_names(batch: Batch) -> dict[int, str]:
    """The names of the people the run holds in memory: actor, requester, assignees."""
    people = [batch.actor, _loaded(batch.instance, "requester")]
    people += [_loaded(task, "assignee") for task in batch.tasks.values()]
    return {p.pk: user_name(p) for p in people if getattr(p, "pk", None) is not None}


def unread_count(user: Any) -> int:
    """How many of a user's notifications are unread (a user or a user id)."""
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
