from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.machine.loader import dump_document
from approvals.models import DefinitionStatus, WorkflowDefinition
from approvals.services.definitions import definition_config


class Command(BaseCommand):
    help = "Print a workflow definition as a machine-config file (YAML or JSON)."

    def add_base_argument(self, parser: CommandParser, *args: Any, **kwargs: Any) -> None:
        # --version names the definition's version here, not Django's.
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key")
        parser.add_argument(
            "--version",
            type=int,
            dest="def_version",
            help="default: the published version, else the newest",
        )
        parser.add_argument("--format", choices=["yaml", "json"], default="yaml")

    def handle(
        self, *args: Any, key: str, def_version: int | None, format: str, **options: Any
    ) -> None:
        versions = WorkflowDefinition.objects.filter(key=key)
        if def_version is not None:
            definition = versions.filter(version=def_version).first()
        else:
            definition = (
                versions.filter(status=DefinitionStatus.PUBLISHED).first()
                or versions.order_by("-version").first()
            )
        if definition is None:
            suffix = f" version {def_version}" if def_version is not None else ""
            raise CommandError(f"no workflow '{key}'{suffix}")
        self.stdout.write(dump_document(definition_config(definition), fmt=format), ending="")
