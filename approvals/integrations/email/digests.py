"""Digests: the held e-mails of a person whose digest is due become one message.

Beat runs `email_digests_gather` every DIGEST_SWEEP_SECONDS. For each person with held rows
due, one transaction locks the person's row (so two sweeps at once take turns, and the second
finds nothing left), writes ONE digest row keyed by the person and the period (the latest due
moment of what it holds: unique, so the same period is never made twice) and marks the held
rows as in it. The digest is then an ordinary OutgoingEmail, sent through the retry queue: a
worker killed while sending it leaves it leased, and the sweep sends that same row again.
A digest with nothing left in it (every task it would list has closed) is not made.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from approvals.integrations.email.models import DIGEST_KIND, EmailStatus, OutgoingEmail
from approvals.integrations.email.render import digest_sections
from approvals.integrations.email.services import DIGEST_ITEM_RELATIONS, SEND_TASK
from approvals.integrations.email.subscriber import new_message_id
from approvals.outbox.dispatch import queue_after_commit

logger = logging.getLogger(__name__)


def email_digests_gather(*, now: datetime, limit: int = 500) -> list[int]:
    """Make the digests due at `now`; returns their ids (queued for sending)."""
    people = list(
        OutgoingEmail.objects.filter(status=EmailStatus.HELD, next_attempt_at__lte=now)
        .order_by()
        .values_list("recipient_id", flat=True)
        .distinct()[:limit]
    )
    made = [pk for pk in (_gather_one(user_id, now=now) for user_id in people) if pk]
    if made:
        logger.info("made %d digest(s) at %s", len(made), now.isoformat())
    return made


def _gather_one(user_id: int, *, now: datetime) -> int | None:
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        held = list(
            OutgoingEmail.objects.filter(
                recipient_id=user_id, status=EmailStatus.HELD, next_attempt_at__lte=now
            )
            .select_related(*DIGEST_ITEM_RELATIONS)
            .order_by("pk")
        )
        if not held:
            return None  # another sweep made it
        ids = [item.pk for item in held]
        if user is None or not user.is_active or not user.email:
            OutgoingEmail.objects.filter(pk__in=ids).update(
                status=EmailStatus.SKIPPED, last_error="the recipient has no active address"
            )
            return None
        waiting, news = digest_sections(held)
        if not waiting and not news:
            OutgoingEmail.objects.filter(pk__in=ids).update(
                status=EmailStatus.SKIPPED,
                last_error="nothing left to tell when the digest was due",
            )
            return None
        period = max(item.next_attempt_at for item in held)
        digest = _digest_row(user, key=f"{user.pk}:{period.isoformat()}", now=now)
        OutgoingEmail.objects.filter(pk__in=ids).update(
            status=EmailStatus.DIGESTED, digest=digest, sent_at=now
        )
        queue_after_commit(SEND_TASK, [(digest.pk,)])
        return digest.pk


def _digest_row(user: object, *, key: str, now: datetime) -> OutgoingEmail:
    fields = {
        "kind": DIGEST_KIND,
        "recipient": user,
        "to": user.email,  # type: ignore[attr-defined]
        "status": EmailStatus.PENDING,
        "next_attempt_at": now,
        "created_at": now,
    }
    try:
        with transaction.atomic():
            return OutgoingEmail.objects.create(
                digest_key=key, message_id=new_message_id(), **fields
            )
    except IntegrityError:
        # Rows that fell due at the moment of a digest already made: a digest of their own.
        count = OutgoingEmail.objects.filter(digest_key__startswith=key).count()
        return OutgoingEmail.objects.create(
            digest_key=f"{key}:{count}", message_id=new_message_id(), **fields
        )
