"""The Celery app: one beat with a plain schedule, tasks discovered in the Django apps."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init, worker_process_shutdown

from workflow_app.observability.logs import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")

app = Celery("signoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
connect_celery_signals()


@worker_init.connect
def _worker_database_limits(**_: object) -> None:
    """Before the worker connects (and before prefork copies its settings into the children)."""
    from workflow_app.database import configure_process

    configure_process("worker")


@worker_process_init.connect
def _one_connection_per_child(**_: object) -> None:
    """A prefork child runs one task at a time in one thread: one connection is its bound."""
    from workflow_app.database import limit_pool

    limit_pool(1)


@worker_process_init.connect
def _trace_child(**_: object) -> None:
    """After the fork: the span exporter's thread must belong to the child."""
    from workflow_app.observability.tracing import setup

    setup("worker")


@beat_init.connect
def _trace_beat(**_: object) -> None:
    from workflow_app.observability.tracing import setup

    setup("beat")


@worker_process_shutdown.connect
def _forget_child_metrics(pid: int | None = None, **_: object) -> None:
    """A prefork child that exits takes its live gauges with it (prometheus-client's
    multiprocess mode: mark_process_dead); its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid or os.getpid())


@app.on_after_finalize.connect
def _schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {
        "heartbeat": {
            "task": "approvals.tasks.record_heartbeat",
            "schedule": float(settings.HEARTBEAT_SECONDS),
        },
        # Deadlines are rows with due_at, found by this sweep (never countdowns). A sweep
        # still queued when the next is due is dropped: the next one catches up anyway.
        "sla-sweep": {
            "task": "approvals.tasks.sla_sweep",
            "schedule": float(settings.SLA_SWEEP_SECONDS),
            "options": {"expires": float(settings.SLA_SWEEP_SECONDS)},
        },
        # Each due tick of a definition's schedules starts its request once (the ticks are
        # rows: a late or second beat takes none twice, services/schedules.py).
        "schedules": {
            "task": "approvals.tasks.fire_schedules",
            "schedule": float(settings.SCHEDULE_SWEEP_SECONDS),
            "options": {"expires": float(settings.SCHEDULE_SWEEP_SECONDS)},
        },
        # What is due to leave again: retries, attempts whose worker died (outbox/sweep.py).
        "outbox-sweep": {
            "task": "approvals.tasks.outbox_sweep",
            "schedule": float(settings.OUTBOX_SWEEP_SECONDS),
            "options": {"expires": float(settings.OUTBOX_SWEEP_SECONDS)},
        },
        # The task and outbox gauges of /metrics, counted here rather than at each scrape.
        "refresh-metrics": {
            "task": "approvals.tasks.refresh_metrics",
            "schedule": float(settings.METRICS_REFRESH_SECONDS),
            "options": {"expires": float(settings.METRICS_REFRESH_SECONDS)},
        },
        # Digests whose time came (approvals/integrations/email/digests.py).
        "email-digests": {
            "task": "approvals.tasks.email_digests",
            "schedule": float(settings.DIGEST_SWEEP_SECONDS),
            "options": {"expires": float(settings.DIGEST_SWEEP_SECONDS)},
        },
        "artifact-orphans-sweep": {
            "task": "approvals.tasks.artifact_orphans_sweep",
            "schedule": 3600.0,
        },
        # Finished requests past their workflow's retention: archived, then deleted.
        "retention": {
            "task": "approvals.tasks.apply_retention",
            "schedule": float(settings.RETENTION_SWEEP_SECONDS),
            "options": {"expires": float(settings.RETENTION_SWEEP_SECONDS)},
        },
        "purge-idempotency-keys": {
            "task": "approvals.tasks.purge_idempotency_keys",
            "schedule": 3600.0,
        },
    }
