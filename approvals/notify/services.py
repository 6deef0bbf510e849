"""Writes to a person's notifications (never to workflow state)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.db import transaction

from approvals.models import Notification
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
