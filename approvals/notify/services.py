"""Writes to a person's notifications (never to workflow state)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction

from approvals.models import LIVE_TASK_STATUSES, Notification
from approvals.notify import push
from approvals.outbox.dispatch import after_commit


@transaction.atomic
def notifications_mark_read(*, actor: Any, ids: list[int] | None, now: datetime) -> int:
    """Mark the actor's notifications read (all of them when `ids` is None); someone else's
    ids are ignored, never an error that would tell they exist."""
    query = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    if ids is not None:
        query = query.filter(pk__in=ids)
    changed = query.update(read_at=now)
    if changed:
        after_commit(functools.partial(push.publish_unread, actor.pk))
    return changed


def notifications_read_for_closed_tasks(
    *, instance_ids: Iterable[int], kinds: Iterable[str], now: datetime
) -> int:
    """Inside the transaction of a change that may close tasks: the unread notifications of
    these kinds about a task of these requests that is no longer open become read (a task
    someone decided, that was cancelled, escalated or handed on needs nobody any more)."""
    query = Notification.objects.filter(
        instance_id__in=list(instance_ids),
        kind__in=list(kinds),
        read_at__isnull=True,
        task__isnull=False,
    ).exclude(task__status__in=LIVE_TASK_STATUSES)
    found = list(query.values_list("pk", "recipient_id"))
    if not found:
        return 0
    recipients = {recipient for _, recipient in found}
    changed = Notification.objects.filter(pk__in=[pk for pk, _ in found]).update(read_at=now)
    for recipient in recipients:
        after_commit(functools.partial(push.publish_unread, recipient))
    return changed
