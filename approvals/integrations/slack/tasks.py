"""Slack's Celery tasks: delivery with retries, answers to button presses, closing messages."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.integrations.slack.services import (
    slack_interaction_answer,
    slack_message_send,
    slack_messages_refresh,
)
from approvals.outbox.dispatch import queue

SLACK_SEND = "approvals.tasks.slack_send"


@shared_task(name=SLACK_SEND, bind=True, max_retries=None)
def slack_send(self, message_id: int) -> None:
    delay = slack_message_send(message_id=message_id, now=timezone.now())
    if delay is not None:
        # Slack's Retry-After, or the backoff; the outbox sweep catches it if this is lost.
        raise self.retry(countdown=delay)


@shared_task(name="approvals.tasks.slack_send_many")
def slack_send_many(message_ids: list[int]) -> None:
    queue(SLACK_SEND, [(message_id,) for message_id in message_ids])


@shared_task(name="approvals.tasks.slack_respond", bind=True, max_retries=5)
def slack_respond(self, interaction_id: int, blocks: list | None = None) -> None:
    if not slack_interaction_answer(interaction_id=interaction_id, blocks=blocks):
        raise self.retry(countdown=2 ** (self.request.retries + 1))


@shared_task(name="approvals.tasks.slack_refresh", bind=True, max_retries=5)
def slack_refresh(self, instance_id: int) -> None:
    """A request's tasks closed: their Slack messages lose the buttons that no longer apply."""
    delay = slack_messages_refresh(instance_id=instance_id, now=timezone.now())
    if delay is not None:
        raise self.retry(countdown=delay)
