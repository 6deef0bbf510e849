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
        "sweep-webhooks": {
            "task": "approvals.tasks.sweep_webhooks",
            "schedule": float(settings.WEBHOOK_SWEEP_SECONDS),
        },
        "purge-idempotency-keys": {
            "task": "approvals.tasks.purge_idempotency_keys",
            "schedule": 3600.0,
        },
    }
