"""Sub-workflow messages, their deliveries: `subflow.start` (a parent's step starts its child)
and `subflow.ended` (a child tells its parent) are sent after commit to the Celery task
`run_subflow`, which claims the row for one attempt (a lease, as automated steps) and calls
`services.subflows.subflow_deliver`. A worker killed mid-delivery, or a broker down at commit,
leaves the row pending; the outbox sweep sends it again, and the delivery, which re-checks the
row under the parent's lock, moves the parent once."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from approvals.models import OutboxMessage, OutboxStatus
from approvals.outbox import retry
from approvals.outbox.dispatch import queue_after_commit
from approvals.outbox.subscribers import Batch, subscribe
from approvals.services.automated_steps import NOT_DUE
from approvals.services.subflows import SUBFLOW_TOPICS, subflow_deliver

RUN_SUBFLOW = "approvals.tasks.run_subflow"

SUBFLOWS = retry.register(
    retry.RetryQueue(
        name="subflows",
        model=OutboxMessage,
        task=RUN_SUBFLOW,
        live=Q(status=OutboxStatus.PENDING, topic__in=SUBFLOW_TOPICS),
        due_field="available_at",
        lease=lambda: float(settings.ACTION_LEASE_SECONDS),
        sweep_grace=lambda: float(settings.OUTBOX_SWEEP_SECONDS),
    )
)


@subscribe(*SUBFLOW_TOPICS)
def run_after_commit(batch: Batch) -> None:
    queue_after_commit(RUN_SUBFLOW, [(message.pk,) for message in batch])


def subflow_execute(*, message_id: int, now: datetime | None = None) -> str:
    """Claim the message for one delivery, then deliver it (what the Celery task calls)."""
    if not SUBFLOWS.claim(message_id, now=now or timezone.now()):
        return NOT_DUE
    return subflow_deliver(message_id=message_id, now=now or timezone.now())
