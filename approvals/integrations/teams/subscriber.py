"""Teams' part of a commit: cards for what people were told (one in a role's channel instead of
one to each member, where the role has a Teams webhook; else to a person's own webhook), and a
follow-up card for each card sent about a task that just closed. Rows are written in the
transaction of the change; posting and its retries are `services.teams_message_send`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.models import Role
from approvals.caching import ProcessCache
from approvals.integrations.teams.models import CLOSED_KIND, TeamsMessage, TeamsStatus
from approvals.machine.words import decision_verb
from approvals.models import LIVE_TASK_STATUSES, Notification, NotificationKind, Task
from approvals.notify.facts import Facts
from approvals.notify.preferences import URGENT_KINDS, choice, choices_for, schedules_for
from approvals.notify.schedule import leaves_at
from approvals.notify.subscriber import DISCUSSION_KINDS, PRIORITY, notification_channel
from approvals.outbox.dispatch import queue_after_commit
from approvals.outbox.subscribers import Batch, subscribe

SEND_MANY_TASK = "approvals.tasks.teams_send_many"
TEAMS_KINDS = (frozenset(PRIORITY) - {NotificationKind.TASK_CLAIMED}) | DISCUSSION_KINDS
# Topics after which a card's task may have closed.
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

_role_webhooks = ProcessCache(
    lambda: dict(
        Role.objects.exclude(teams_webhook_url="").values_list("group_id", "teams_webhook_url")
    ),
    models=[Role],
)


@notification_channel
def send_to_teams(created: list[Notification], facts: Facts) -> None:
    if not settings.TEAMS_ENABLED or not created:
        return
    ids = _cards(created, facts)
    if ids:
        queue_after_commit(SEND_MANY_TASK, [(ids,)])


def _cards(created: list[Notification], facts: Facts) -> list[int]:
    webhooks = _role_webhooks.get()
    wanted_kinds = [n for n in created if n.kind in TEAMS_KINDS]
    personal = set(
        get_user_model()
        .objects.filter(pk__in={n.recipient_id for n in wanted_kinds}, is_active=True)
        .exclude(teams_webhook_url="")
        .values_list("pk", flat=True)
    )
    chosen = choices_for(personal)
    schedules = schedules_for(personal)
    rows: list[TeamsMessage] = []
    posted_to_role: set[tuple[int, int, str]] = set()
    for n in wanted_kinds:
        task = facts.tasks.get(n.task_id) if n.task_id else None
        queued = task is not None and task["assignee_id"] is None
        covering = [
            g
            for g in (facts.task_groups.get(n.task_id, []) if queued else [])
            if g in webhooks and n.recipient_id in facts.members.get(g, set())
        ]
        if covering:
            for group_id in covering:
                key = (group_id, n.task_id or 0, n.kind)
                if key not in posted_to_role:
                    posted_to_role.add(key)
                    rows.append(_row(n, role_id=group_id))
            continue
        if n.recipient_id not in personal:
            continue
        wanted = choice(chosen, n.recipient_id, n.kind)
        if not wanted.teams or wanted.digest:
            continue
        due = (
            n.created_at
            if n.kind in URGENT_KINDS
            else leaves_at(n.created_at, schedules[n.recipient_id])
        )
        rows.append(_row(n, recipient_id=n.recipient_id, notification=n, due=due))
    return [m.pk for m in TeamsMessage.objects.bulk_create(rows)] if rows else []


def _row(n: Notification, *, due: Any = None, **target: Any) -> TeamsMessage:
    return TeamsMessage(
        kind=n.kind,
        instance_id=n.instance_id,
        task_id=n.task_id,
        text=n.text,
        next_attempt_at=due or n.created_at,
        created_at=n.created_at,
        **target,
    )


@subscribe(*CLOSING_TOPICS)
def follow_up_closed_tasks(batch: Batch) -> None:
    """A follow-up card ("Approved by Bob Baker") for every card sent about a task that closed."""
    if not settings.TEAMS_ENABLED:
        return
    instance_ids = {m.instance_id for m in batch if m.instance_id}
    sent = list(
        TeamsMessage.objects.filter(
            instance_id__in=instance_ids,
            status=TeamsStatus.SENT,
            closed_shown_at__isnull=True,
            follows__isnull=True,
            task__isnull=False,
        )
        .exclude(kind=CLOSED_KIND)
        .exclude(task__status__in=LIVE_TASK_STATUSES)
    )
    if not sent:
        return
    notes = _closing_notes(batch)
    now = max(m.created_at for m in batch)
    rows = [
        TeamsMessage(
            kind=CLOSED_KIND,
            recipient_id=card.recipient_id,
            role_id=card.role_id,
            instance_id=card.instance_id,
            task_id=card.task_id,
            follows=card,
            text=notes.get(card.task_id, "")
            or _fallback_note(card.task_id, batch)
            or "This task is closed",
            next_attempt_at=now,
            created_at=now,
        )
        for card in sent
    ]
    created = TeamsMessage.objects.bulk_create(rows)
    TeamsMessage.objects.filter(pk__in=[c.pk for c in sent]).update(closed_shown_at=now)
    queue_after_commit(SEND_MANY_TASK, [([c.pk for c in created],)])


def _closing_notes(batch: Batch) -> dict[int, str]:
    """What closed each task, in words, from the batch's decisions."""
    from approvals.notify.facts import facts_for

    decided = [m for m in batch if m.topic == "task.decided"]
    if not decided:
        return {}
    facts = facts_for(batch.subset(decided), with_members=False)
    notes: dict[int, str] = {}
    for m in decided:
        task_id = m.payload.get("task")
        decision = m.payload.get("decision") or ""
        who = facts.name(m.payload.get("actor"))
        if isinstance(task_id, int) and decision:
            verb = decision_verb(decision)
            notes[task_id] = f"{verb[:1].upper()}{verb[1:]} by {who}" if who else verb
    return notes


def _fallback_note(task_id: int | None, batch: Batch) -> str:
    task: Task | None = batch.tasks.get(task_id) if task_id else None
    if task is None:
        task = Task.objects.filter(pk=task_id).first() if task_id else None
    if task is None:
        return ""
    from approvals.services.task_work import describe_closed

    note = describe_closed(task)
    return note[:1].upper() + note[1:]
