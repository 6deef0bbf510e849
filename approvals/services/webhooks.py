"""Outgoing webhooks: fan-out in the transaction of the change, delivery after commit.

- `queue_webhooks` is an outbox subscriber: in the transaction that writes the engine's
  messages it writes one WebhookDelivery per interested subscription, so a delivery exists iff
  the change committed, and asks a worker to send them once the transaction commits.
- `webhook_attempt` makes one signed POST. It first claims the row (attempt number as a
  compare-and-set, plus a lease in `next_attempt_at`) in a short transaction, so no row lock is
  held while an outside server answers and two dispatches of one attempt send it once.
- `webhook_due` is the beat sweep's query: pending rows whose `next_attempt_at` has passed,
  taken with SELECT ... FOR UPDATE SKIP LOCKED so several sweeps never hand out the same row.
  Retries and lost dispatches are found here, never by a Celery countdown (invariant 6).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from approvals import webhooks as http
from approvals.models import (
    WEBHOOK_EVENT_TYPES,
    DeliveryStatus,
    OutboxMessage,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
    WorkflowInstance,
)
from approvals.services.errors import NotAllowed
from approvals.services.subscribers import subscribe

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
# A dispatched attempt that has not claimed its row by then (lost message, dead worker) is
# handed out again by the sweep.
DISPATCH_LEASE = timedelta(minutes=5)


def backoff(attempts: int) -> timedelta:
    """Delay after the `attempts`-th failure: base, 4x base, 16x base... capped at 6 hours."""
    seconds = settings.WEBHOOK_BACKOFF_SECONDS * 4 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _attempt_lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + 60)


# ----- fan-out (in the transaction of the change)


@subscribe(*WEBHOOK_EVENT_TYPES)
def queue_webhooks(messages: list[OutboxMessage]) -> None:
    topics = {m.topic for m in messages}
    subscriptions = [
        s
        for s in WebhookSubscription.objects.filter(is_active=True)
        if topics.intersection(s.event_types)
    ]
    if not subscriptions:
        return
    instances = {
        row["pk"]: row
        for row in WorkflowInstance.objects.filter(pk__in={m.instance_id for m in messages}).values(
            "pk", "title", "business_key", "definition__key", "definition__version"
        )
    }
    deliveries = []
    for message in messages:
        instance = instances.get(message.instance_id, {})
        workflow = instance.get("definition__key", "")
        payload = _payload(message, instance)
        deliveries.extend(
            WebhookDelivery(
                subscription=subscription,
                event_id=message.idempotency_key,
                event_type=message.topic,
                instance_id=message.instance_id,
                payload=payload,
                max_attempts=settings.WEBHOOK_MAX_ATTEMPTS,
                next_attempt_at=message.created_at,
                created_at=message.created_at,
            )
            for subscription in subscriptions
            if subscription.wants(message.topic, workflow)
        )
    if deliveries:
        created = WebhookDelivery.objects.bulk_create(deliveries)
        first_attempts = [(d.pk, 1) for d in created]
        transaction.on_commit(lambda: dispatch(first_attempts))


def _payload(message: OutboxMessage, instance: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": message.idempotency_key,
        "type": message.topic,
        "created_at": message.created_at.isoformat(),
        "instance": {
            "id": message.instance_id,
            "workflow": instance.get("definition__key"),
            "workflow_version": instance.get("definition__version"),
            "title": instance.get("title"),
            "business_key": instance.get("business_key"),
            "url": settings.SITE_URL.rstrip("/")
            + reverse("api:instance", kwargs={"pk": message.instance_id})
            if message.instance_id
            else None,
        },
        "data": message.payload,
    }


def dispatch(attempts: list[tuple[int, int]]) -> None:
    """Ask a worker to make these attempts. Runs after commit, so it must not raise: should the
    broker be down, the sweep finds the rows by their `next_attempt_at` anyway."""
    from approvals.tasks import deliver_webhook

    for delivery_id, attempt in attempts:
        try:
            deliver_webhook.delay(delivery_id, attempt)
        except Exception:
            logger.warning("webhook delivery %s not queued; the sweep will retry", delivery_id)


# ----- delivery (outside any transaction of the change)


def webhook_due(*, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """Due deliveries, each leased for DISPATCH_LEASE, as (id, attempt number) to make."""
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("pk", "attempts")[:limit]
        )
        if rows:
            WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                next_attempt_at=now + DISPATCH_LEASE
            )
    return [(pk, attempts + 1) for pk, attempts in rows]


def webhook_attempt(*, delivery_id: int, attempt: int, now: datetime) -> WebhookAttempt | None:
    """Make attempt number `attempt` of a delivery, or nothing when it is not that attempt's
    turn (another dispatch made it, it was delivered, or it gave up)."""
    with transaction.atomic():
        claimed = (
            WebhookDelivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.PENDING, attempts=attempt - 1
            ).update(attempts=attempt, next_attempt_at=now + _attempt_lease())
            == 1
        )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    subscription = delivery.subscription
    if not subscription.is_active:
        # Switched off after the event: nothing is sent; redeliver once it is on again.
        return _record(
            delivery_id,
            attempt,
            http.Answer(None, "", "not sent: the subscription is switched off"),
            now=now,
            duration_ms=0,
            give_up=True,
        )
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    started = time.monotonic()
    answer = http.send_signed(
        subscription.url,
        body,
        secret=subscription.secret,
        headers={
            "X-Signoff-Event": delivery.event_type,
            "X-Signoff-Event-Id": delivery.event_id,
            "X-Signoff-Delivery": str(delivery.pk),
            "X-Signoff-Attempt": str(attempt),
            "Idempotency-Key": delivery.event_id,
        },
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(delivery_id, attempt, answer, now=now, duration_ms=duration_ms)


@transaction.atomic
def _record(
    delivery_id: int,
    attempt: int,
    answer: http.Answer,
    *,
    now: datetime,
    duration_ms: int,
    give_up: bool = False,
) -> WebhookAttempt:
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    logged = WebhookAttempt.objects.create(
        delivery=delivery,
        number=attempt,
        started_at=now,
        duration_ms=duration_ms,
        status_code=answer.status,
        response_excerpt=answer.excerpt,
        error=answer.error,
        succeeded=answer.ok,
    )
    delivery.last_status_code = answer.status
    delivery.last_response = answer.excerpt
    delivery.last_error = answer.error
    if delivery.status != DeliveryStatus.PENDING or delivery.attempts != attempt:
        # Redelivered from the admin meanwhile: the log keeps this attempt, the new round goes on.
        delivery.save(update_fields=["last_status_code", "last_response", "last_error"])
        return logged
    if answer.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif give_up or attempt >= delivery.max_attempts:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + backoff(attempt)
    delivery.save(
        update_fields=[
            "status",
            "delivered_at",
            "next_attempt_at",
            "last_status_code",
            "last_response",
            "last_error",
        ]
    )
    return logged


@transaction.atomic
def webhook_redeliver(*, delivery_ids: list[int], actor: Any, now: datetime) -> int:
    """Send again now (delivered or given up alike), with a fresh round of attempts; the log
    keeps the earlier ones. Returns how many were queued."""
    if not (actor and actor.is_active and actor.has_perm("approvals.change_webhookdelivery")):
        raise NotAllowed("you may not redeliver webhooks")
    rows = list(
        WebhookDelivery.objects.select_for_update()
        .filter(pk__in=delivery_ids)
        .values_list("pk", "attempts")
    )
    for pk, attempts in rows:
        WebhookDelivery.objects.filter(pk=pk).update(
            status=DeliveryStatus.PENDING,
            next_attempt_at=now,
            delivered_at=None,
            max_attempts=attempts + settings.WEBHOOK_MAX_ATTEMPTS,
        )
    next_attempts = [(pk, attempts + 1) for pk, attempts in rows]
    transaction.on_commit(lambda: dispatch(next_attempts))
    return len(rows)
