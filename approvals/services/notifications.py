"""Who is told what, written in the transaction of the change that caused it.

`notify` is an in-transaction outbox subscriber (subscribers.py): from the messages of one
`Run.commit` it decides the recipients, writes their `Notification` rows (and the Slack
messages that go with them) in one INSERT each, and after commit pushes them to the browsers
(`approvals.live`) and hands the Slack messages to Celery. A rolled-back change tells nobody;
a committed one is never lost: the rows are the source of truth the browser catches up from.

One change tells each person one thing: a decision that also finishes the request is a single
"finished" notification to the requester, and a requester sent back for changes gets the
decision (linked to their new task) rather than a separate "new task".
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from approvals.models import (
    AuditEvent,
    Notification,
    NotificationKind,
    OutboxMessage,
    SlackMessage,
    Task,
    WorkflowInstance,
)
from approvals.services.subscribers import subscribe

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
)
TOPICS = NOTIFYING_TOPICS + LIVE_ONLY_TOPICS

# When one change would tell a person several things about one request, the strongest wins.
PRIORITY = [
    NotificationKind.COMPLETED,
    NotificationKind.DECISION,
    NotificationKind.ESCALATION,
    NotificationKind.TASK_DELEGATED,
    NotificationKind.TASK_NEW,
    NotificationKind.REMINDER,
    NotificationKind.TASK_CLAIMED,
]
# Kinds also sent to Slack (a claim by someone else is only worth the bell).
SLACK_KINDS = frozenset(PRIORITY) - {NotificationKind.TASK_CLAIMED}
DECISION_VERBS = {
    "APPROVE": "approved",
    "REJECT": "rejected",
    "REQUEST_CHANGES": "asked for changes on",
    "RESUBMIT": "resubmitted",
    "WITHDRAW": "withdrew",
}
OUTCOME_WORDS = {
    "completed": "is complete",
    "rejected": "was rejected",
    "cancelled": "was cancelled",
    "failed": "stopped: an automated step failed",
}


def task_path(task_id: int) -> str:
    """The task page (built by the inbox issue); every link to a task goes through here."""
    return f"/tasks/{task_id}/"


def absolute(path: str) -> str:
    return settings.SITE_URL + path


def display_name(first: str, last: str, username: str) -> str:
    return f"{first} {last}".strip() or username


@dataclass
class Facts:
    """What the messages of a batch refer to, read with a fixed number of queries."""

    tasks: dict[int, dict[str, Any]]
    instances: dict[int, dict[str, Any]]
    task_groups: dict[int, list[int]]
    group_names: dict[int, str]
    members: dict[int, set[int]]
    names: dict[int, str]
    actors: dict[tuple[int, datetime], int | None]
    cancelled_groups: dict[tuple[int, str], list[int]] = field(default_factory=dict)

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


def gather(messages: list[OutboxMessage], *, with_members: bool = True) -> Facts:
    instance_ids = {m.instance_id for m in messages if m.instance_id}
    task_ids = _task_ids(messages)
    tasks = {
        t["id"]: t
        for t in Task.objects.filter(pk__in=task_ids).values(
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
        )
    }
    instance_ids |= {t["instance_id"] for t in tasks.values()}
    instances = {
        i["id"]: i
        for i in WorkflowInstance.objects.filter(pk__in=instance_ids).values(
            "id", "title", "requester_id", "state", "status", "definition__title"
        )
    }
    through = Task.candidate_groups.through
    task_groups: dict[int, list[int]] = defaultdict(list)
    group_names: dict[int, str] = {}
    for task_id, group_id, group_name in through.objects.filter(task_id__in=task_ids).values_list(
        "task_id", "group_id", "group__name"
    ):
        task_groups[task_id].append(group_id)
        group_names[group_id] = group_name
    cancelled_groups: dict[tuple[int, str], list[int]] = {}
    for m in messages:
        if m.topic == "task.cancelled" and m.instance_id:
            key = (m.instance_id, m.payload.get("state", ""))
            rows = through.objects.filter(task__instance_id=key[0], task__state=key[1])
            cancelled_groups[key] = sorted(set(rows.values_list("group_id", flat=True)))
    members: dict[int, set[int]] = defaultdict(set)
    if with_members and group_names:
        User = get_user_model()
        for user_id, group_id in User.groups.through.objects.filter(
            group_id__in=group_names, user__is_active=True
        ).values_list("user_id", "group_id"):
            members[group_id].add(user_id)
    actors: dict[tuple[int, datetime], int | None] = {}
    # The audit events written by the same run (same instance, same `now`) name its actor.
    moments = {(m.instance_id, m.created_at) for m in messages if m.instance_id}
    if moments:
        latest: dict[tuple[int, datetime], int] = {}
        for instance_id, at, seq, actor_id in AuditEvent.objects.filter(
            instance_id__in={i for i, _ in moments}, at__in={t for _, t in moments}
        ).values_list("instance_id", "at", "seq", "actor_id"):
            key = (instance_id, at)
            if key in moments and seq > latest.get(key, -1):
                latest[key] = seq
                actors[key] = actor_id
    user_ids = {a for a in actors.values() if a} | {
        t["assignee_id"] for t in tasks.values() if t["assignee_id"]
    }
    for m in messages:
        for key in ("actor", "assignee", "by", "to"):
            if isinstance(m.payload.get(key), int):
                user_ids.add(m.payload[key])
    names = {
        u["id"]: display_name(u["first_name"], u["last_name"], u["username"])
        for u in get_user_model()
        .objects.filter(pk__in=user_ids)
        .values("id", "first_name", "last_name", "username")
    }
    return Facts(
        tasks=tasks,
        instances=instances,
        task_groups=dict(task_groups),
        group_names=group_names,
        members=dict(members),
        names=names,
        actors=actors,
        cancelled_groups=cancelled_groups,
    )


@dataclass
class _Draft:
    recipient: int
    instance_id: int
    kind: str
    message: OutboxMessage
    task_id: int | None = None
    actor_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def plan(messages: list[OutboxMessage], facts: Facts) -> list[_Draft]:
    """The notifications of one batch: at most one per (recipient, request)."""
    drafts: dict[tuple[int, int], _Draft] = {}
    decisions: dict[int, str | None] = {}

    def offer(draft: _Draft) -> None:
        key = (draft.recipient, draft.instance_id)
        current = drafts.get(key)
        if current is None:
            drafts[key] = draft
        elif PRIORITY.index(draft.kind) < PRIORITY.index(current.kind):
            # The stronger one wins but keeps the link to a new task the weaker one announced.
            draft.data = {**current.data, **draft.data}
            if draft.task_id is None:
                draft.task_id = current.task_id
            if current.kind == NotificationKind.TASK_NEW:
                draft.data["next_task"] = current.task_id
            drafts[key] = draft
        elif draft.kind == NotificationKind.TASK_NEW:
            current.data["next_task"] = draft.task_id

    for message in messages:
        topic, payload = message.topic, message.payload
        actor = facts.actor_of(message)
        task_id = payload.get("task") if isinstance(payload.get("task"), int) else None
        task = facts.tasks.get(task_id) if task_id else None
        instance_id = task["instance_id"] if task else message.instance_id
        if instance_id not in facts.instances:
            continue
        requester = facts.instances[instance_id]["requester_id"]
        recipients: Iterable[int | None] = ()
        skip_actor = True
        data: dict[str, Any] = {}
        kind = ""
        if topic in ("task.created", "task.reassigned") and task:
            kind, recipients, skip_actor = (
                NotificationKind.TASK_NEW,
                facts.candidates(task_id),
                False,
            )
        elif topic == "task.claimed" and task:
            others: set[int] = set()
            for group_id in facts.task_groups.get(task_id, []):
                others |= facts.members.get(group_id, set())
            others.discard(payload.get("assignee"))
            if task["forbid_requester"]:
                others.discard(requester)
            kind, recipients = NotificationKind.TASK_CLAIMED, others
        elif topic == "task.delegated" and task:
            kind, recipients = NotificationKind.TASK_DELEGATED, [payload.get("to")]
        elif topic == "task.reminded" and task:
            kind, recipients, skip_actor = (
                NotificationKind.REMINDER,
                facts.candidates(task_id),
                False,
            )
        elif topic == "task.escalated" and task:
            kind, recipients, skip_actor = (
                NotificationKind.ESCALATION,
                facts.candidates(task_id),
                False,
            )
            data["level"] = payload.get("level", task["escalation_level"])
        elif topic == "task.decided":
            decisions[instance_id] = payload.get("decision")
            kind, recipients = NotificationKind.DECISION, [requester]
            data["decision"] = payload.get("decision")
        elif topic == "instance.completed":
            kind, recipients = NotificationKind.COMPLETED, [requester]
            data["outcome"] = payload.get("outcome")
            if decisions.get(instance_id):
                data["decision"] = decisions[instance_id]
        for recipient in recipients:
            if recipient is None or (skip_actor and recipient == actor):
                continue
            offer(
                _Draft(
                    recipient=recipient,
                    instance_id=instance_id,
                    kind=kind,
                    message=message,
                    task_id=task_id,
                    actor_id=actor,
                    data=dict(data),
                )
            )
    return list(drafts.values())


def describe(draft: _Draft, facts: Facts) -> str:
    instance = facts.instances[draft.instance_id]
    title = f"“{instance['title']}”"
    task = facts.tasks.get(draft.task_id) if draft.task_id else None
    step = (task["label"] or task["state"]) if task else ""
    actor = facts.name(draft.actor_id) or "Someone"
    kind = draft.kind
    if kind == NotificationKind.TASK_NEW:
        return f"New task: {step} for {title}"
    if kind == NotificationKind.TASK_CLAIMED:
        return f"{actor} took {step} for {title}"
    if kind == NotificationKind.TASK_DELEGATED:
        return f"{actor} delegated {step} for {title} to you"
    if kind == NotificationKind.REMINDER:
        return f"Reminder: {step} for {title} is waiting for you"
    if kind == NotificationKind.ESCALATION:
        return f"Escalated to you: {step} for {title}"
    decision = draft.data.get("decision")
    verb = DECISION_VERBS.get(decision or "", f"chose {decision} on")
    if kind == NotificationKind.DECISION:
        return f"{actor} {verb} your request {title}"
    outcome = OUTCOME_WORDS.get(draft.data.get("outcome", ""), "is finished")
    if decision:
        return f"{actor} {verb} your request {title}; it {outcome}"
    return f"Your request {title} {outcome}"


@subscribe(*TOPICS)
def notify(messages: list[OutboxMessage]) -> None:
    from approvals import live

    facts = gather(messages)
    drafts = plan(messages, facts)
    rows = [
        Notification(
            recipient_id=d.recipient,
            kind=d.kind,
            topic=d.message.topic,
            message=d.message,
            instance_id=d.instance_id,
            task_id=d.data.get("next_task") or d.task_id,
            actor_id=d.actor_id,
            text=describe(d, facts)[:300],
            data={
                **d.data,
                "state": facts.instances[d.instance_id]["state"],
                "task_state": (facts.tasks.get(d.task_id) or {}).get("state"),
            },
            created_at=d.message.created_at,
        )
        for d in drafts
    ]
    created = Notification.objects.bulk_create(rows) if rows else []
    slack_ids = _slack_messages(created, facts) if settings.SLACK_BOT_TOKEN else []
    pushed = [live.serialize(n, facts.names) for n in created]
    events = live.events_for(messages, facts)
    if pushed or events:
        transaction.on_commit(functools.partial(live.publish, pushed, events), robust=True)
    if slack_ids:
        from approvals.tasks import slack_send_many

        transaction.on_commit(functools.partial(slack_send_many.delay, slack_ids), robust=True)
    if settings.SLACK_BOT_TOKEN:
        _refresh_closed_slack_messages(messages)


# Topics after which a task's Slack messages may offer buttons that no longer apply.
CLOSING_TOPICS = frozenset(
    {
        "task.decided",
        "task.cancelled",
        "task.delegated",
        "task.reassigned",
        "task.escalated",
        "instance.completed",
    }
)


def _refresh_closed_slack_messages(messages: list[OutboxMessage]) -> None:
    """Slack messages of tasks that just closed lose their buttons and say why, after commit."""
    instance_ids = {m.instance_id for m in messages if m.topic in CLOSING_TOPICS and m.instance_id}
    if not instance_ids:
        return
    sent = SlackMessage.objects.filter(
        instance_id__in=instance_ids, closed_shown_at__isnull=True, ts__gt=""
    )
    if sent.exists():
        from approvals.tasks import slack_refresh

        for instance_id in instance_ids:
            transaction.on_commit(functools.partial(slack_refresh.delay, instance_id), robust=True)


def _slack_messages(created: list[Notification], facts: Facts) -> list[int]:
    """Direct messages for the Slack-worthy notifications; a role with a Slack channel gets one
    message there instead of one to each member for its tasks."""
    from accounts.models import Role

    channels = dict(
        Role.objects.filter(group_id__in=facts.group_names)
        .exclude(slack_channel="")
        .values_list("group_id", "slack_channel")
    )
    rows: list[SlackMessage] = []
    posted_to_role: set[tuple[int, int, str]] = set()
    for n in created:
        if n.kind not in SLACK_KINDS:
            continue
        task = facts.tasks.get(n.task_id) if n.task_id else None
        queued = task is not None and task["assignee_id"] is None
        covering = [
            g
            for g in (facts.task_groups.get(n.task_id, []) if queued else [])
            if g in channels and n.recipient_id in facts.members.get(g, set())
        ]
        if covering:
            for group_id in covering:
                key = (group_id, n.task_id, n.kind)
                if key not in posted_to_role:
                    posted_to_role.add(key)
                    rows.append(_slack_row(n, role_id=group_id))
            continue
        rows.append(_slack_row(n, recipient_id=n.recipient_id, notification=n))
    return [m.pk for m in SlackMessage.objects.bulk_create(rows)] if rows else []


def _slack_row(n: Notification, **target: Any) -> SlackMessage:
    return SlackMessage(
        kind=n.kind,
        instance_id=n.instance_id,
        task_id=n.task_id,
        text=n.text,
        next_attempt_at=n.created_at,
        created_at=n.created_at,
        **target,
    )


# ----- reading and marking


@transaction.atomic
def notifications_mark_read(*, actor: Any, ids: list[int] | None, now: datetime) -> int:
    """Mark the actor's notifications read (all of them when `ids` is None); someone else's
    ids are ignored, never an error that would tell they exist."""
    from approvals import live

    query = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    if ids is not None:
        query = query.filter(pk__in=ids)
    changed = query.update(read_at=now)
    if changed:
        transaction.on_commit(functools.partial(live.publish_unread, actor.pk), robust=True)
    return changed


def unread_count(user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()
