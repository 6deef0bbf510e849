from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from approvals.services.errors import WorkflowError
from approvals.services.migration import (
    migration_plan,
    migration_prepare,
    migration_run,
    parse_mapping,
)


def _ids(value: str) -> list[int]:
    try:
        ids = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--only {value}: give request ids separated by commas") from None
    if not ids:
        raise CommandError("--only: give at least one request id")
    return ids


class Command(BaseCommand):
    help = (
        "Move the active requests of one version of a workflow to another (the published "
        "one), with a mapping of states. --dry-run lists what would happen to each request and "
        "writes nothing. Exits non-zero on a refused mapping (nothing changed) and when a "
        "request could not be migrated (it is left untouched and listed with the reason)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the workflow definition's key")
        parser.add_argument("--from", type=int, required=True, dest="from_version")
        parser.add_argument("--to", type=int, required=True, dest="to_version")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            dest="mapping",
            metavar="OLD_STATE=NEW_STATE",
            help="where the requests in OLD_STATE go (repeat it); a state kept by name needs none",
        )
        parser.add_argument("--dry-run", action="store_true", help="list the plan, write nothing")
        parser.add_argument("--only", type=_ids, help="only these request ids (1,2,3)")
        parser.add_argument(
            "--recompute-sla",
            action="store_true",
            help="due dates of kept tasks from the new version's SLA (else kept as they are)",
        )

    def handle(
        self,
        *args: Any,
        key: str,
        from_version: int,
        to_version: int,
        mapping: list[str],
        dry_run: bool,
        only: list[int] | None,
        recompute_sla: bool,
        **options: Any,
    ) -> None:
        now = timezone.now()
        try:
            migration = migration_prepare(
                key=key,
                from_version=from_version,
                to_version=to_version,
                mapping=parse_mapping(mapping),
                only=only,
                recompute_sla=recompute_sla,
            )
        except WorkflowError as exc:
            raise CommandError(f"refused: {exc.message}; nothing was changed") from None
        if dry_run:
            plans = migration_plan(migration, now=now)
            for plan in plans:
                self.stdout.write("\n".join(plan.lines()))
            refused = sum(1 for p in plans if p.problem)
            self.stdout.write(
                f"dry run: {len(plans) - refused} request(s) would be migrated from "
                f"{migration.words}, {refused} refused; nothing was changed"
            )
            return
        result = migration_run(migration, actor=None, now=now)
        for plan in result.migrated:
            self.stdout.write(f"#{plan.instance_id} {plan.summary}")
        for plan in result.refused:
            self.stderr.write(f"#{plan.instance_id} {plan.title}: left as it is: {plan.problem}")
        summary = (
            f"{len(result.migrated)} request(s) migrated from {migration.words}, "
            f"{len(result.refused)} left as they are"
        )
        if not result.migrated and not result.refused:
            summary = f"nothing to do: no active request of {key} v{from_version} to migrate"
        if result.refused:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
