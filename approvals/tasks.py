"""Celery tasks: thin wrappers that take ids and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals.services.heartbeat import heartbeat_record


@shared_task(name="approvals.tasks.record_heartbeat")
def record_heartbeat(source: str = "beat") -> None:
    heartbeat_record(source=source, now=timezone.now())
