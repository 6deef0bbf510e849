"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.services.heartbeat import heartbeat_record


@shared_task(name="approvals.tasks.record_heartbeat")
def record_heartbeat(source: str = "beat") -> None:
    heartbeat_record(source=source, now=timezone.now())


# ----- outgoing webhooks and API housekeeping (issue 7)


@shared_task(name="approvals.tasks.deliver_webhook")
def deliver_webhook(delivery_id: int, attempt: int) -> None:
    from approvals.services.webhooks import webhook_attempt

    webhook_attempt(delivery_id=delivery_id, attempt=attempt, now=timezone.now())


@shared_task(name="approvals.tasks.sweep_webhooks")
def sweep_webhooks() -> int:
    """Beat: hand out deliveries whose next attempt is due (retries, lost dispatches)."""
    from approvals.services.webhooks import dispatch, webhook_due

    due = webhook_due(now=timezone.now())
    dispatch(due)
    return len(due)


@shared_task(name="approvals.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    from approvals.api.idempotency import purge_expired

    return purge_expired(now=timezone.now())
