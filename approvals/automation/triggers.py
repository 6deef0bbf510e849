"""Completion-trigger messages, their deliveries: `trigger.complete_start` (a request ended
in a final state with `on_complete_start`) is sent after commit to the Celery task
`run_completion_start`, which claims the row for one attempt (a lease, as sub-workflows) and
calls `services.triggers.completion_start_deliver`. A worker killed mid-delivery, or a broker
down at commit, leaves the row pending; the outbox sweep sends it again, and the delivery,
which re-checks the row under the ended request's lock, starts the other request once."""

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
from approvals.services.triggers import TRIGGER_TOPICS, completion_start_deliver

RUN_COMPLETION_START = "approvals.tasks.run_completion_start"

COMPLETION_STARTS = retry.register(
    retry.RetryQueue(
        name="completion-starts",
        model=OutboxMessage,
        task=RUN_COMPLETION_START,
        live=Q(status=OutboxStatus.PENDING, topic__in=TRIGGER_TOPICS),
        due_field="available_at",
        lease=lambda: float(settings.ACTION_LEASE_SECONDS),
        sweep_grace=lambda: float(settings.OUTBOX_SWEEP_SECONDS),
    )
)


@subscribe(*TRIGGER_TOPICS)
def run_after_commit(batch: Batch) -> None:
    queue_after_commit(RUN_COMPLETION_START, [(message.pk,) for message in batch])


def completion_start_execute(*, message_id: int, now: datetime | None = None) -> str:
    """Claim the message for one delivery, then deliver it (what the Celery task calls)."""
    if not COMPLETION_STARTS.claim(message_id, now=now or timezone.now()):
        return NOT_DUE
    return completion_start_deliver(message_id=message_id, now=now or timezone.now())
