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
from django.db.models import Q

from approvals import metrics, tracing
from approvals.integrations.webhooks import signing as http
from approvals.models import (
    DeliveryStatus,
    OutboxMessage,
    WebhookAttempt,
    WebhookDelivery,
)
from approvals.outbox import retry
from approvals.outbox.dispatch import queue_after_commit
from approvals.services.errors import NotAllowed

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
# A dispatched attempt that has not claimed its row by then (lost message, dead worker) is
# handed out again by the sweep.
DISPATCH_LEASE = timedelta(minutes=5)


DELIVERIES = retry.register(
    retry.RetryQueue(
        name="webhooks",
        model=WebhookDelivery,
        task="approvals.tasks.deliver_webhook",
        live=Q(status=DeliveryStatus.PENDING),
        due_field="next_attempt_at",
        # An attempt holds its row for the answer's timeout and a minute more.
        lease=lambda: float(settings.WEBHOOK_TIMEOUT_SECONDS + 60),
        sweep_lease=DISPATCH_LEASE.total_seconds,
    )
)


def backoff(attempts: int) -> timedelta:
    """Delay after the `attempts`-th failure: base, 4x base, 16x base... capped at 6 hours."""
    policy = retry.Backoff(
        base=settings.WEBHOOK_BACKOFF_SECONDS, factor=4, cap=MAX_BACKOFF.total_seconds()
    )
    return timedelta(seconds=policy.seconds(attempts))


# ----- delivery (outside any transaction of the change)


def webhook_due(*, now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """Due deliveries, each leased for DISPATCH_LEASE, as (id, attempt number) to make."""
    return DELIVERIES.due(now=now, limit=limit)


def webhook_attempt(*, delivery_id: int, attempt: int, now: datetime) -> WebhookAttempt | None:
    """Make attempt number `attempt` of a delivery, or nothing when it is not that attempt's
    turn (another dispatch made it, it was delivered, or it gave up)."""
    if not DELIVERIES.claim(delivery_id, now=now, attempt=attempt):
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    with tracing.delivery_span(
        "signoff.webhook_attempt",
        _stored_trace(delivery) if tracing.ON else None,
        instance=delivery.instance_id,
        event=delivery.event_type,
        attempt=attempt,
    ):
        return _attempt(delivery, attempt, now)


def _stored_trace(delivery: WebhookDelivery) -> dict[str, str] | None:
    """The trace context of the outbox message the delivery was made from (its event id)."""
    return (
        OutboxMessage.objects.filter(idempotency_key=delivery.event_id)
        .values_list("trace_context", flat=True)
        .first()
    )


def _attempt(delivery: WebhookDelivery, attempt: int, now: datetime) -> WebhookAttempt | None:
    delivery_id = delivery.pk
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
        metrics.delivery_failed("webhooks")
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
    queue_after_commit(DELIVERIES.task, [(pk, attempts + 1) for pk, attempts in rows])
    return len(rows)
