"""E-mail's part of a commit: one OutgoingEmail per notification for people with an address
who want this kind by e-mail (approvals/notify/preferences.py), written in the transaction
that made the notification. At once: due now (or when the reader's quiet time ends, except
escalations) and queued after commit through `outbox.dispatch`. In a digest: held, due when
the digest leaves (`digests.py` gathers them). Sending and its retries are `services.py`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model

from approvals.integrations.email.models import EmailStatus, OutgoingEmail
from approvals.integrations.email.render import mail_domain
from approvals.models import Notification
from approvals.notify.facts import Facts
from approvals.notify.preferences import URGENT_KINDS, choice, choices_for, schedules_for
from approvals.notify.schedule import leaves_at, next_digest
from approvals.notify.subscriber import notification_channel
from approvals.outbox.dispatch import queue_after_commit

SEND_MANY_TASK = "approvals.tasks.email_send_many"
# Messages one worker task sends over one SMTP connection.
BATCH = 50


def new_message_id() -> str:
    return f"{uuid.uuid4().hex}@{mail_domain()}"


@notification_channel
def send_by_email(created: list[Notification], facts: Facts) -> None:
    if not settings.EMAIL_NOTIFICATIONS or not created:
        return
    people = {
        pk: (email, zone)
        for pk, email, zone in get_user_model()
        .objects.filter(pk__in={n.recipient_id for n in created}, is_active=True)
        .exclude(email="")
        .values_list("pk", "email", "time_zone")
    }
    if not people:
        return
    chosen = choices_for(people)
    schedules = schedules_for(people, zones={pk: zone for pk, (_, zone) in people.items()})
    rows: list[OutgoingEmail] = []
    for n in created:
        if n.recipient_id not in people:
            continue
        wanted = choice(chosen, n.recipient_id, n.kind)
        if not wanted.email:
            continue
        schedule = schedules[n.recipient_id]
        if wanted.digest:
            status, due = EmailStatus.HELD, next_digest(n.created_at, wanted.delivery, schedule)
        elif n.kind in URGENT_KINDS:
            status, due = EmailStatus.PENDING, n.created_at
        else:
            status, due = EmailStatus.PENDING, leaves_at(n.created_at, schedule)
        rows.append(
            OutgoingEmail(
                kind=n.kind,
                notification=n,
                recipient_id=n.recipient_id,
                to=people[n.recipient_id][0],
                instance_id=n.instance_id,
                task_id=n.task_id,
                message_id=new_message_id(),
                status=status,
                next_attempt_at=due,
                created_at=n.created_at,
            )
        )
    if not rows:
        return
    OutgoingEmail.objects.bulk_create(rows)
    # What waits for a quiet time's end or a digest is the sweeps' to send when due.
    ids = [
        row.pk
        for row in rows
        if row.status == EmailStatus.PENDING and row.next_attempt_at <= row.created_at
    ]
    queue_after_commit(SEND_MANY_TASK, [(ids[i : i + BATCH],) for i in range(0, len(ids), BATCH)])
