"""E-mail's part of a commit: one OutgoingEmail per notification for people with an address,
written in the transaction that made the notification and queued after commit through
`outbox.dispatch`; sending and its retries are `services.email_messages_send`."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model

from approvals.integrations.email.models import OutgoingEmail
from approvals.integrations.email.render import mail_domain
from approvals.models import Notification
from approvals.notify.facts import Facts
from approvals.notify.subscriber import notification_channel
from approvals.outbox.dispatch import queue_after_commit

SEND_MANY_TASK = "approvals.tasks.email_send_many"
# Messages one worker task sends over one SMTP connection.
BATCH = 50


@notification_channel
def send_by_email(created: list[Notification], facts: Facts) -> None:
    if not settings.EMAIL_NOTIFICATIONS or not created:
        return
    addresses = dict(
        get_user_model()
        .objects.filter(pk__in={n.recipient_id for n in created}, is_active=True)
        .exclude(email="")
        .values_list("pk", "email")
    )
    domain = mail_domain()
    rows = [
        OutgoingEmail(
            kind=n.kind,
            notification=n,
            recipient_id=n.recipient_id,
            to=addresses[n.recipient_id],
            instance_id=n.instance_id,
            task_id=n.task_id,
            message_id=f"{uuid.uuid4().hex}@{domain}",
            next_attempt_at=n.created_at,
            created_at=n.created_at,
        )
        for n in created
        if n.recipient_id in addresses
    ]
    if not rows:
        return
    ids = [row.pk for row in OutgoingEmail.objects.bulk_create(rows)]
    queue_after_commit(SEND_MANY_TASK, [(ids[i : i + BATCH],) for i in range(0, len(ids), BATCH)])
