"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.services.heartbeat import heartbeat_record


@shared_task(name="approvals.tasks.record_heartbeat")
def record_heartbeat(source: str = "beat") -> None:
    heartbeat_record(source=source, now=timezone.now())


# ----- SLA sweep and automated steps (issue 6)


@shared_task(name="approvals.tasks.sla_sweep", ignore_result=True)
def sla_sweep() -> dict[str, int]:
    """Beat sends this every SLA_SWEEP_SECONDS; concurrent sweeps are safe (SKIP LOCKED)."""
    from approvals.services.sla import sla_sweep as sweep

    return sweep(now=timezone.now()).as_dict()


@shared_task(
    name="approvals.tasks.run_action",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_action(message_id: int) -> str:
    """One attempt of an automated step. A worker killed mid-step gets the message again
    (acks_late); the step's outbox row decides whether anything is still to do."""
    from approvals.services.actions import action_execute

    return action_execute(message_id=message_id)
