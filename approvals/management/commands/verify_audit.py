from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.models import WorkflowInstance
from approvals.services.audit import check_chains


class Command(BaseCommand):
    help = "Verify the hash chains of the audit trail; exits non-zero at the first broken link."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--instance", type=int, help="verify only this instance")

    def handle(self, *args: Any, instance: int | None, **options: Any) -> None:
        instances = WorkflowInstance.objects.order_by("pk")
        if instance is not None:
            instances = instances.filter(pk=instance)
            if not instances.exists():
                raise CommandError(f"no instance {instance}")
        checked = 0
        for result in check_chains(instances.values_list("pk", flat=True).iterator()):
            if result.broken:
                raise CommandError(f"audit chain broken: {result.broken}")
            checked += 1
        self.stdout.write(self.style.SUCCESS(f"audit chains verified: {checked} instance(s)"))
