"""Teams' Celery tasks: one card (with its retries), or the cards of one commit."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.integrations.teams.services import SEND_TASK, teams_message_send
from approvals.integrations.teams.subscriber import SEND_MANY_TASK
from approvals.outbox.dispatch import queue


@shared_task(name=SEND_TASK, bind=True, max_retries=None)
def teams_send(self, message_id: int) -> None:
    delay = teams_message_send(message_id=message_id, now=timezone.now())
    if delay is not None:
        # Teams' Retry-After, or the backoff; the outbox sweep sends it if this is lost.
        raise self.retry(countdown=delay)


@shared_task(name=SEND_MANY_TASK)
def teams_send_many(message_ids: list[int]) -> None:
    queue(SEND_TASK, [(message_id,) for message_id in message_ids])
