"""Celery task of automated steps: one attempt."""

from __future__ import annotations

from celery import shared_task

from approvals.automation.runner import action_execute
from approvals.automation.subflows import subflow_execute
from approvals.automation.triggers import completion_start_execute


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


@shared_task(
    name="approvals.tasks.run_subflow",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_subflow(message_id: int) -> str:
    """Start a sub-workflow step's child, or tell a parent its child ended."""
    return subflow_execute(message_id=message_id)


@shared_task(
    name="approvals.tasks.run_completion_start",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_completion_start(message_id: int) -> str:
    """Start the workflow a final state's on_complete_start names."""
    return completion_start_execute(message_id=message_id)
