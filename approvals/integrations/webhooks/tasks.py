"""Celery task of outgoing webhooks: one attempt of one delivery."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.integrations.webhooks.services import webhook_attempt


@shared_task(name="approvals.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int, attempt: int) -> None:
    webhook_attempt(delivery_id=delivery_id, attempt=attempt, now=timezone.now())
