"""Run one sweep now: escalations, reminders, `after` timers, then what is due to leave (automated
steps, Slack messages, webhook deliveries)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from approvals.outbox.sweep import outbox_sweep
from approvals.services.sla import sla_sweep


class Command(BaseCommand):
    help = "Run one SLA sweep and one outbox sweep now (what Celery beat runs) and report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="At most this many items of each kind (default: everything due).",
        )

    def handle(self, *args: Any, limit: int | None = None, **options: Any) -> None:
        if limit is not None and limit < 1:
            self.stderr.write("--limit must be at least 1")
            raise SystemExit(2)
        now = timezone.now()
        result = sla_sweep(now=now, limit=limit)
        sent = outbox_sweep(now=now, limit=limit or 200)
        self.stdout.write(f"SLA sweep at {now:%Y-%m-%d %H:%M:%S %Z}:")
        for label, count in (
            ("tasks escalated", result.escalated),
            ("tasks flagged (past the last escalation level)", result.flagged),
            ("reminders sent", result.reminded),
            ("timers fired", result.timers_fired),
            (
                "timers whose guard failed (recorded in their request's history)",
                result.timers_failed,
            ),
            ("automated steps queued", sent.get("steps", 0)),
            ("Slack messages queued", sent.get("slack", 0)),
            ("webhook deliveries queued", sent.get("webhooks", 0)),
            ("skipped: request busy, next sweep", result.busy),
            ("skipped: already handled", result.stale),
            ("failed (logged; the next sweep tries again)", result.failed),
        ):
            self.stdout.write(f"  {label}: {count}")
        if not result.total and not any(sent.values()):
            self.stdout.write("  nothing was due")
