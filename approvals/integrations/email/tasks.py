"""E-mail's Celery tasks: one message (the sweep's and a resend's), or a batch over one
connection (what a commit queues)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.integrations.email.services import SEND_TASK, email_messages_send
from approvals.integrations.email.subscriber import SEND_MANY_TASK


@shared_task(name=SEND_TASK, bind=True, max_retries=None)
def email_send(self, message_id: int) -> None:
    delay = email_messages_send(ids=[message_id], now=timezone.now()).get(message_id)
    if delay is not None:
        # The backoff; the outbox sweep sends it if this retry is lost.
        raise self.retry(countdown=delay)


@shared_task(name=SEND_MANY_TASK)
def email_send_many(message_ids: list[int]) -> None:
    # What fails here waits, due, for the outbox sweep.
    email_messages_send(ids=message_ids, now=timezone.now())


@shared_task(name="approvals.tasks.email_digests", ignore_result=True)
def email_digests() -> int:
    """Beat sends this every DIGEST_SWEEP_SECONDS; sweeps running at once are safe."""
    from approvals.integrations.email.digests import email_digests_gather

    return len(email_digests_gather(now=timezone.now()))
