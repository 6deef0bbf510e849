from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.models import WorkflowInstance
from approvals.services.audit import verify_instances


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
        for broken in verify_instances(instances.iterator()):
            raise CommandError(f"audit chain broken: {broken}")
        checked = instances.count()
        self.stdout.write(self.style.SUCCESS(f"audit chains verified: {checked} instance(s)"))
