from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from approvals.services.definitions import definition_import, definition_parse
from approvals.services.errors import WorkflowError


class Command(BaseCommand):
    help = "Import a workflow definition file (XState-style machine config, YAML or JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--publish", action="store_true", help="publish it as well")

    def handle(self, *args: Any, file: Path, publish: bool, **options: Any) -> None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        try:
            config = definition_parse(text, filename=str(file))
            definition = definition_import(
                config=config, actor=None, publish=publish, now=timezone.now()
            )
        except WorkflowError as exc:
            details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
            raise CommandError("\n".join([f"{file}: {exc.message}", *details])) from None
        self.stdout.write(
            self.style.SUCCESS(f"{definition.key} v{definition.version} is {definition.status}")
        )
