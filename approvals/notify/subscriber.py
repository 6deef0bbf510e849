"""Who is told what, written in the transaction of the change that caused it.

`notify` is an in-transaction outbox subscriber (outbox/subscribers.py): from the batch of one
`Run.commit` it decides the recipients and writes their `Notification` rows in one INSERT, hands
them to the registered channels (Slack...), which write their own rows in the same
transaction, and after commit pushes them to the browsers (`notify.push`). A rolled-back change
tells nobody; a committed one is never lost: the rows are the source of truth the browser
catches up from.

One change tells each person one thing: a decision that also finishes the request is a single
"finished" notification to the requester, and a requester sent back for changes gets the
decision (linked to their new task) rather than a separate "new task".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from approvals.models import Notification, NotificationKind, OutboxMessage
from approvals.notify import push
from approvals.notify.facts import TOPICS, Facts, facts_for
from approvals.outbox.dispatch import after_commit
from approvals.outbox.subscribers import Batch, subscribe

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
    "withdrawn": "was withdrawn",
    "failed": "stopped: an automated step failed",
}


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


NotificationChannel = Callable[[list[Notification], Facts], None]

_channels: list[NotificationChannel] = []


def notification_channel(func: NotificationChannel) -> NotificationChannel:
    """Register a channel (Slack, e-mail...) that gets, in the same transaction, the
    notifications one commit created and the facts they were made from."""
    if func not in _channels:
        _channels.append(func)
    return func


@subscribe(*TOPICS)
def notify(batch: Batch) -> None:
    facts = facts_for(batch)
    drafts = plan(batch, facts)
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
    for channel in _channels:
        channel(created, facts)
    pushed = [push.serialize(n, facts.names) for n in created]
    events = push.events_for(batch, facts)
    if pushed or events:
        after_commit(functools.partial(push.publish, pushed, events))
