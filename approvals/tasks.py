"""The Celery index: every task the worker runs, each a thin wrapper that takes ids and calls
one function. Celery finds this module in the app; the channels' tasks are imported here."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from approvals import metrics
from approvals.api.idempotency import purge_expired
from approvals.automation import tasks as step_tasks  # noqa: F401
from approvals.integrations.email import tasks as email_tasks  # noqa: F401
from approvals.integrations.slack import tasks as slack_tasks  # noqa: F401
from approvals.integrations.teams import tasks as teams_tasks  # noqa: F401
from approvals.integrations.webhooks import tasks as webhook_tasks  # noqa: F401
from approvals.outbox import tasks as outbox_tasks  # noqa: F401
from approvals.services.artifacts import artifact_orphans_sweep
from approvals.services.audit_exports import audit_export_build
from approvals.services.heartbeat import heartbeat_record
from approvals.services.inbound_hooks import inbound_deliveries_purge
from approvals.services.retention import apply_retention as retire_expired
from approvals.services.schedules import schedules_fire
from approvals.services.sla import sla_sweep as sweep_due


@shared_task(name="approvals.tasks.record_heartbeat")
def record_heartbeat(source: str = "beat") -> None:
    heartbeat_record(source=source, now=timezone.now())


@shared_task(name="approvals.tasks.sla_sweep", ignore_result=True)
def sla_sweep() -> dict[str, int]:
    """Beat sends this every SLA_SWEEP_SECONDS; concurrent sweeps are safe (SKIP LOCKED)."""
    return sweep_due(now=timezone.now()).as_dict()


@shared_task(name="approvals.tasks.fire_schedules", ignore_result=True)
def fire_schedules() -> dict[str, int]:
    """Beat sends this every SCHEDULE_SWEEP_SECONDS; two beats are safe (one row per tick)."""
    return schedules_fire(now=timezone.now())


@shared_task(name="approvals.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    return purge_expired(now=timezone.now()) + inbound_deliveries_purge(now=timezone.now())


@shared_task(name="approvals.tasks.refresh_metrics", ignore_result=True)
def refresh_metrics() -> dict[str, int]:
    """Beat sends this every METRICS_REFRESH_SECONDS: the gauges a scrape reads."""
    return metrics.refresh_gauges(now=timezone.now())


@shared_task(name="approvals.tasks.artifact_orphans_sweep", ignore_result=True)
def remove_orphaned_files() -> int:
    """Stored document files whose upload was rolled back (approvals/services/artifacts.py)."""
    return artifact_orphans_sweep(now=timezone.now())


@shared_task(name="approvals.tasks.apply_retention", ignore_result=True)
def apply_retention() -> int:
    """Requests past their workflow's retention: archived, then deleted (services/retention.py)."""
    return sum(report.deleted for report in retire_expired(now=timezone.now()))


@shared_task(name="approvals.tasks.build_audit_export", ignore_result=True)
def build_audit_export(export_id: int) -> None:
    """A signed audit bundle asked for on the auditor's page (services/audit_exports.py)."""
    audit_export_build(export_id=export_id, now=timezone.now())
