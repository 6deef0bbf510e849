from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from approvals.audit_export.signing import SigningKeyMissing
from approvals.models import WorkflowDefinition
from approvals.services.retention import apply_retention


class Command(BaseCommand):
    help = (
        "Archive the finished requests past their workflow's retention period into signed "
        "audit bundles (kept in the storage) and delete them, leaving a tombstone; requests "
        "under legal hold stay. Beat runs this every RETENTION_SWEEP_SECONDS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", default="", help="only this workflow")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what is due; change nothing"
        )

    def handle(self, *args: Any, workflow: str, dry_run: bool, **options: Any) -> None:
        if workflow and not WorkflowDefinition.objects.filter(key=workflow).exists():
            raise CommandError(f"no workflow '{workflow}'")
        try:
            reports = apply_retention(now=timezone.now(), workflow_key=workflow, dry_run=dry_run)
        except SigningKeyMissing as exc:
            raise CommandError(str(exc)) from None
        if not reports:
            self.stdout.write("no published workflow declares a retention period")
            return
        for report in reports:
            line = (
                f"{report.workflow_key} (retention {report.retention}, ended on or before "
                f"{report.cutoff:%Y-%m-%d %H:%M %Z}): {report.expired} expired, "
                f"{report.held} under legal hold, {report.waiting_for_children} waiting for "
                "their sub-requests"
            )
            if not dry_run:
                line += f", {report.deleted} archived and deleted"
            self.stdout.write(line)
            for bundle in report.bundles:
                self.stdout.write(f"  archive: {bundle}")
            for kept in report.kept:
                self.stdout.write(self.style.WARNING(f"  kept {kept}"))
