"""Slack's part of a commit: direct messages (or a role's channel) for what people were told,
and, for tasks that closed, an update of the messages already sent so their buttons go.

Both write or find rows in the transaction of the change and queue Slack's Celery tasks after
commit through `outbox.dispatch`; delivery and its retries are `services.slack_message_send`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.models import Role
from approvals.caching import ProcessCache
from approvals.models import Notification, NotificationKind, SlackMessage
from approvals.notify.facts import Facts
from approvals.notify.preferences import URGENT_KINDS, choice, choices_for, schedules_for
from approvals.notify.schedule import leaves_at
from approvals.notify.subscriber import DISCUSSION_KINDS, PRIORITY, notification_channel
from approvals.outbox.dispatch import queue_after_commit
from approvals.outbox.subscribers import Batch, subscribe

# Kinds also sent to Slack (a claim by someone else is only worth the bell).
SLACK_KINDS = (frozenset(PRIORITY) - {NotificationKind.TASK_CLAIMED}) | DISCUSSION_KINDS
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

# Role (group) id -> its Slack channel, for the roles that have one.
_role_channels = ProcessCache(
    lambda: dict(Role.objects.exclude(slack_channel="").values_list("group_id", "slack_channel")),
    models=[Role],
)


@notification_channel
def send_to_slack(created: list[Notification], facts: Facts) -> None:
    if not settings.SLACK_BOT_TOKEN:
        return
    ids = _slack_messages(created, facts)
    if ids:
        queue_after_commit("approvals.tasks.slack_send_many", [(ids,)])


@subscribe(*CLOSING_TOPICS)
def refresh_closed_messages(batch: Batch) -> None:
    """Slack messages of tasks that just closed lose their buttons and say why, after commit."""
    if not settings.SLACK_BOT_TOKEN:
        return
    instance_ids = {m.instance_id for m in batch if m.instance_id}
    sent = SlackMessage.objects.filter(
        instance_id__in=instance_ids, closed_shown_at__isnull=True, ts__gt=""
    )
    if instance_ids and sent.exists():
        queue_after_commit(
            "approvals.tasks.slack_refresh",
            [(instance_id,) for instance_id in sorted(instance_ids)],
        )


def _slack_messages(created: list[Notification], facts: Facts) -> list[int]:
    """Direct messages for the Slack-worthy notifications; a role with a Slack channel gets one
    message there instead of one to each member for its tasks. A direct message follows its
    reader's preferences: none when they turned Slack off for the kind or get it in a digest
    (an e-mail), and not before their quiet time ends (escalations excepted)."""
    channels = _role_channels.get()
    people = {n.recipient_id for n in created if n.kind in SLACK_KINDS}
    chosen = choices_for(people)
    schedules = schedules_for(people)
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
        wanted = choice(chosen, n.recipient_id, n.kind)
        if not wanted.slack or wanted.digest:
            continue
        due = (
            n.created_at
            if n.kind in URGENT_KINDS
            else leaves_at(n.created_at, schedules[n.recipient_id])
        )
        rows.append(_slack_row(n, recipient_id=n.recipient_id, notification=n, due=due))
    return [m.pk for m in SlackMessage.objects.bulk_create(rows)] if rows else []


def _slack_row(n: Notification, *, due: Any = None, **target: Any) -> SlackMessage:
    return SlackMessage(
        kind=n.kind,
        instance_id=n.instance_id,
        task_id=n.task_id,
        text=n.text,
        next_attempt_at=due or n.created_at,
        created_at=n.created_at,
        **target,
    )
