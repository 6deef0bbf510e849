"""Celery tasks of the outbox: the sweep."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.outbox.sweep import outbox_sweep


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
