"""Outgoing webhooks, their part of a commit: one `WebhookDelivery` per interested
subscription, written in the transaction of the change (so a delivery exists iff the change
committed), and its first attempt queued after commit. Delivery and retries are
`services.webhook_attempt` on the `DELIVERIES` queue.

Subscriptions are read once per process and again when one is saved or deleted (another
process's edit is seen within a minute), so a transition does not read them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from approvals.caching import ProcessCache
from approvals.integrations.webhooks.services import DELIVERIES
from approvals.models import (
    WEBHOOK_EVENT_TYPES,
    OutboxMessage,
    WebhookDelivery,
    WebhookSubscription,
    WorkflowInstance,
)
from approvals.outbox.dispatch import queue_after_commit
from approvals.outbox.subscribers import Batch, subscribe

_active = ProcessCache(
    lambda: list(WebhookSubscription.objects.filter(is_active=True)),
    models=[WebhookSubscription],
)


@subscribe(*WEBHOOK_EVENT_TYPES)
def queue_webhooks(batch: Batch) -> None:
    topics = {m.topic for m in batch}
    subscriptions = [s for s in _active.get() if topics.intersection(s.event_types)]
    if not subscriptions:
        return
    instances = _instances(batch)
    deliveries = []
    for message in batch:
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
            if subscription.wants(message.topic, workflow, message.instance_id)
        )
    if deliveries:
        created = WebhookDelivery.objects.bulk_create(deliveries)
        queue_after_commit(DELIVERIES.task, [(d.pk, 1) for d in created])
    ended = {m.instance_id for m in batch if m.topic == "instance.completed"}
    finished = [s.pk for s in subscriptions if s.instance_id is not None and s.instance_id in ended]
    if finished:
        # An ask's callback has told its request's end: nothing more will come for it.
        WebhookSubscription.objects.filter(pk__in=finished).update(is_active=False)


def _instances(batch: Batch) -> dict[int, dict[str, Any]]:
    """What a payload says of its request: from the run's instance, else read."""
    instance = batch.instance
    if instance is not None:
        return {
            instance.pk: {
                "pk": instance.pk,
                "title": instance.title,
                "business_key": instance.business_key,
                "definition__key": instance.definition.key,
                "definition__version": instance.definition.version,
            }
        }
    return {
        row["pk"]: row
        for row in WorkflowInstance.objects.filter(pk__in={m.instance_id for m in batch}).values(
            "pk", "title", "business_key", "definition__key", "definition__version"
        )
    }


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
