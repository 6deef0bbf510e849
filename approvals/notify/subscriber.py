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

from approvals.machine.words import decision_verb, roles_phrase
from approvals.models import Notification, NotificationKind, OutboxMessage
from approvals.notify import push
from approvals.notify.facts import TOPICS, Facts, facts_for
from approvals.notify.services import notifications_read_for_closed_tasks
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
# Kinds of the discussion's notifications (services/discussion.py makes them).
DISCUSSION_KINDS = frozenset(
    {NotificationKind.MENTION, NotificationKind.QUESTION, NotificationKind.COMMENT}
)
# Kinds about a task for the recipient: read once the task is closed, whoever closed it.
TASK_KINDS = (
    NotificationKind.TASK_NEW,
    NotificationKind.TASK_CLAIMED,
    NotificationKind.TASK_DELEGATED,
    NotificationKind.REMINDER,
    NotificationKind.ESCALATION,
)
# Topics after which a task the recipient was told about may be closed.
CLOSING_TOPICS = frozenset(
    {
        "task.decided",
        "task.cancelled",
        "task.escalated",
        "task.delegated",
        "task.reassigned",
        "instance.completed",
    }
)
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
    """The notifications of one batch: at most one per (recipient, request), except that
    someone who gets several new tasks in one step (one per role they hold) is told of each."""
    drafts: dict[tuple[int, ...], _Draft] = {}
    decisions: dict[int, str | None] = {}
    behalf: dict[int, int | None] = {}
    new_tasks: dict[int, list[int]] = {}
    for message in messages:
        task_id = message.payload.get("task")
        if message.topic == "task.created" and task_id in facts.tasks:
            new_tasks.setdefault(facts.tasks[task_id]["instance_id"], []).append(task_id)

    def offer(draft: _Draft) -> None:
        key: tuple[int, ...] = (draft.recipient, draft.instance_id)
        current = drafts.get(key)
        if current is None:
            drafts[key] = draft
        elif (
            draft.kind == current.kind == NotificationKind.TASK_NEW
            and draft.task_id != current.task_id
        ):
            drafts[(*key, draft.task_id or 0)] = draft
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
        if isinstance(payload.get("on_behalf_of"), int):
            data["on_behalf_of"] = payload["on_behalf_of"]
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
            behalf[instance_id] = data.get("on_behalf_of")
            kind, recipients = NotificationKind.DECISION, [requester]
            data["decision"] = payload.get("decision")
            data["waits_on"] = _waiting_on(facts, new_tasks.get(instance_id, []), requester)
        elif topic == "instance.completed":
            kind, recipients = NotificationKind.COMPLETED, [requester]
            data["outcome"] = payload.get("outcome")
            if decisions.get(instance_id):
                data["decision"] = decisions[instance_id]
                if behalf.get(instance_id):
                    data["on_behalf_of"] = behalf[instance_id]
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
    _name_the_roles_of_several_new_tasks(list(drafts.values()), facts)
    return list(drafts.values())


def _waiting_on(facts: Facts, task_ids: list[int], requester: int) -> str:
    """Whom the request waits on after a decision: the new tasks' people or roles."""
    who: list[str] = []
    for task_id in task_ids:
        task = facts.tasks[task_id]
        if task["for_requester"] or task["assignee_id"] == requester:
            phrase = "you"
        elif task["assignee_id"]:
            phrase = facts.name(task["assignee_id"])
        else:
            roles = [facts.group_names.get(g, "") for g in facts.task_groups.get(task_id, [])]
            phrase = roles_phrase(r for r in roles if r)
        if phrase and phrase not in who:
            who.append(phrase)
    return " and ".join(who)


def _name_the_roles_of_several_new_tasks(drafts: list[_Draft], facts: Facts) -> None:
    """Someone told of two new tasks of one request (one per role they hold) reads which
    role each is for."""
    counts: dict[tuple[int, int], int] = {}
    for d in drafts:
        if d.kind == NotificationKind.TASK_NEW:
            counts[(d.recipient, d.instance_id)] = counts.get((d.recipient, d.instance_id), 0) + 1
    for d in drafts:
        if d.kind != NotificationKind.TASK_NEW or counts[(d.recipient, d.instance_id)] < 2:
            continue
        roles = [
            facts.group_names[g]
            for g in facts.task_groups.get(d.task_id or 0, [])
            if d.recipient in facts.members.get(g, set()) and g in facts.group_names
        ]
        if roles:
            d.data["as_role"] = ", ".join(roles)


def describe(draft: _Draft, facts: Facts) -> str:
    instance = facts.instances[draft.instance_id]
    title = f"“{instance['title']}”"
    task = facts.tasks.get(draft.task_id) if draft.task_id else None
    label = (task["label"] or task["state"]) if task else ""
    actor = facts.name(draft.actor_id) or "Someone"
    behalf = draft.data.get("on_behalf_of")
    behalf_text = f" on behalf of {facts.name(behalf)}" if behalf else ""
    kind = draft.kind
    if kind == NotificationKind.TASK_NEW:
        role = f" (as {draft.data['as_role']})" if draft.data.get("as_role") else ""
        return f"New task: {label} for {title}{role}"
    if kind == NotificationKind.TASK_CLAIMED:
        return f"{actor} took {label} for {title}{behalf_text}"
    if kind == NotificationKind.TASK_DELEGATED:
        return f"{actor} delegated {label} for {title} to you{behalf_text}"
    if kind == NotificationKind.REMINDER:
        return f"Reminder: {label} for {title} is waiting for you"
    if kind == NotificationKind.ESCALATION:
        return f"Escalated to you: {label} for {title}"
    decision = draft.data.get("decision") or ""
    step = facts.step_label(draft.instance_id, task["state"]) if task else ""
    if kind == NotificationKind.DECISION:
        return f"{actor}{_decided(decision, step, title)}{behalf_text}{_next(draft, facts, task)}"
    outcome = draft.data.get("outcome", "")
    if decision == "APPROVE" and outcome == "completed":
        return f"{actor}{_decided(decision, step, title)}{behalf_text}; your request was approved"
    if decision == "REJECT" and outcome == "rejected":
        return f"{actor} rejected your request {title}{behalf_text}"
    words = OUTCOME_WORDS.get(outcome, "is finished")
    if decision:
        return f"{actor}{_decided(decision, step, title)}{behalf_text}; your request {words}"
    return f"Your request {title} {words}"


def _decided(decision: str, step: str, title: str) -> str:
    """' approved the Manager approval step of “Laptop batch”' (after the actor's name)."""
    if decision == "REQUEST_CHANGES":
        return f" asked for changes on your request {title}"
    if decision == "REJECT":
        return f" rejected your request {title}"
    if decision in ("retried", "skipped", "cancelled"):
        return f" {decision_verb(decision)} {step} of {title}"
    # "approved the … step", but "answered “Picked” on the … step".
    verb = decision_verb(decision) + ("" if decision in ("APPROVE", "RESUBMIT") else " on")
    return f" {verb} the {step} step of {title}" if step else f" {verb} {title}"


def _next(draft: _Draft, facts: Facts, task: dict[str, Any] | None) -> str:
    """Where the request is now, after a decision that did not finish it."""
    if draft.data.get("decision") == "REQUEST_CHANGES":
        return ""
    waits_on = draft.data.get("waits_on")
    if waits_on:
        return f"; it now waits on {waits_on}"
    state = facts.instances[draft.instance_id]["state"]
    if task is not None and state == task["state"]:
        return "; other approvals are still needed" if task["rule"] != "any" else ""
    if task is not None and task["state"].startswith(state + "."):
        return ""  # one part of a parallel step; the others go on
    return f"; it is now at {facts.step_label(draft.instance_id, state)}"


NotificationChannel = Callable[[list[Notification], Facts], None]

_channels: list[NotificationChannel] = []


def notification_channel(func: NotificationChannel) -> NotificationChannel:
    """Register a channel (Slack, e-mail...) that gets, in the same transaction, the
    notifications one commit created and the facts they were made from."""
    if func not in _channels:
        _channels.append(func)
    return func


def deliver(created: list[Notification], facts: Facts) -> None:
    """Hand the notifications one commit created to the registered channels (Slack, Teams,
    e-mail), which follow each reader's preferences."""
    for channel in _channels:
        channel(created, facts)


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
                "workflow": facts.instances[d.instance_id]["definition__title"],
                "state": facts.instances[d.instance_id]["state"],
                "task_state": (facts.tasks.get(d.task_id) or {}).get("state"),
            },
            created_at=d.message.created_at,
        )
        for d in drafts
    ]
    created = Notification.objects.bulk_create(rows) if rows else []
    closing = {m.instance_id for m in batch if m.topic in CLOSING_TOPICS and m.instance_id}
    if closing:
        notifications_read_for_closed_tasks(
            instance_ids=closing, kinds=TASK_KINDS, now=max(m.created_at for m in batch)
        )
    deliver(created, facts)
    pushed = [push.serialize(n, facts.names) for n in created]
    events = push.events_for(batch, facts)
    if pushed or events:
        after_commit(functools.partial(push.publish, pushed, events))
