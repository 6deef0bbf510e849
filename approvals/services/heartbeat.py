"""Liveness of the background processes, as seen by /healthz and the admin."""

from __future__ import annotations

from datetime import datetime

from approvals.models import Heartbeat


def heartbeat_record(*, source: str, now: datetime) -> None:
    Heartbeat.objects.update_or_create(source=source, defaults={"seen_at": now})
