"""Celery tasks of the outbox: one attempt of an automated step, and the sweep."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.outbox.steps import action_execute
from approvals.outbox.sweep import outbox_sweep


@shared_task(
    name="approvals.tasks.run_action",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_action(message_id: int) -> str:
    """One attempt of an automated step. A worker killed mid-step gets the message again
    (acks_late); the step's outbox row decides whether anything is still to do."""
    return action_execute(message_id=message_id)


@shared_task(name="approvals.tasks.outbox_sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Beat sends this every OUTBOX_SWEEP_SECONDS."""
    return outbox_sweep(now=timezone.now())


# The sweep's names before there was one sweep for every channel; messages an older beat
# queued under them still run.
@shared_task(name="approvals.tasks.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> dict[str, int]:
    return outbox_sweep(now=timezone.now())


@shared_task(name="approvals.tasks.slack_sweep", ignore_result=True)
def slack_sweep() -> dict[str, int]:
    return outbox_sweep(now=timezone.now())
