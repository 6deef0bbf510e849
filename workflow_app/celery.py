"""The Celery app: one beat with a plain schedule, tasks discovered in the Django apps."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")

app = Celery("signoff")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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
        # What is due to leave again: retries, attempts whose worker died (outbox/sweep.py).
        "outbox-sweep": {
            "task": "approvals.tasks.outbox_sweep",
            "schedule": float(settings.OUTBOX_SWEEP_SECONDS),
            "options": {"expires": float(settings.OUTBOX_SWEEP_SECONDS)},
        },
        "purge-idempotency-keys": {
            "task": "approvals.tasks.purge_idempotency_keys",
            "schedule": 3600.0,
        },
    }
