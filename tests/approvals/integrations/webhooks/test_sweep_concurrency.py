"""Several sweeps at once never hand out the same delivery (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from approvals.integrations.webhooks.services import webhook_due
from approvals.models import WebhookDelivery, WebhookSubscription
from tests.approvals.flows import NOW

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

SWEEPS = 4


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is real only on PostgreSQL")


def test_concurrent_sweeps_share_out_the_due_rows():
    subscription = WebhookSubscription.objects.create(
        name="ERP", url="http://127.0.0.1:9/", secret="x" * 20, event_types=["instance.started"]
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=subscription,
            event_id=f"evt-{n}",
            event_type="instance.started",
            payload={"n": n},
            max_attempts=8,
            next_attempt_at=NOW,
            created_at=NOW,
        )
        for n in range(40)
    )
    barrier = threading.Barrier(SWEEPS)
    handed_out: list[list[tuple[int, int]]] = []

    def sweep() -> None:
        try:
            barrier.wait()
            handed_out.append(webhook_due(now=NOW + timedelta(seconds=1), limit=15))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(SWEEPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = [pk for batch in handed_out for pk, _ in batch]
    assert len(ids) == len(set(ids)) == 40
