from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.machine import validate_config
from approvals.machine.scenarios import transition_words, uncovered
from approvals.machine.statechart import Statechart
from approvals.models import DefinitionStatus, WorkflowDefinition
from approvals.services.definitions import (
    definition_config,
    definition_parse,
    definition_scenarios,
)
from approvals.services.errors import WorkflowError

FILE_SUFFIXES = (".yaml", ".yml", ".json")


class Command(BaseCommand):
    help = (
        "Run a workflow definition's scenarios in memory (nothing is written): a definition "
        "file, or a key (its draft, else its published version). Exits non-zero naming the "
        "first failing scenario."
    )

    def add_base_argument(self, parser: CommandParser, *args: Any, **kwargs: Any) -> None:
        # --version names the definition's version here, not Django's.
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("target", help="a definition's key, or a definition file")
        parser.add_argument(
            "--version",
            type=int,
            dest="def_version",
            help="with a key: this version instead of the draft (else the published one)",
        )
        parser.add_argument(
            "--coverage",
            action="store_true",
            help="also list the transitions no scenario takes",
        )

    def handle(
        self, *args: Any, target: str, def_version: int | None, coverage: bool, **options: Any
    ) -> None:
        config, name = self._config(target, def_version)
        # The shape only: the roles and actions of this installation do not matter in memory
        # (importing checks them).
        problems = validate_config(config)
        if problems:
            raise CommandError("\n".join([f"{name}: the definition has problems", *problems]))
        results = definition_scenarios(config)
        if not results:
            self.stdout.write(f"{name} has no scenarios")
            return
        for result in results:
            style = self.style.SUCCESS if result.passed else self.style.ERROR
            self.stdout.write(style(str(result)))
        if coverage:
            missing = uncovered(Statechart(config), results)
            for transition in missing:
                self.stdout.write(f"not covered: {transition_words(transition)}")
            if not missing:
                self.stdout.write("every transition is covered")
        failing = [r for r in results if not r.passed]
        if failing:
            raise CommandError(
                f"{len(failing)} of {len(results)} scenario(s) of {name} failed; first: "
                f"'{failing[0].name}': {failing[0].difference}"
            )
        self.stdout.write(self.style.SUCCESS(f"{len(results)} scenario(s) of {name} passed"))

    def _config(self, target: str, version: int | None) -> tuple[dict[str, Any], str]:
        path = Path(target)
        if path.suffix.lower() in FILE_SUFFIXES or path.exists():
            if version is not None:
                raise CommandError("--version goes with a key, not a file")
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror}") from None
            try:
                return definition_parse(text, filename=str(path)), str(path)
            except WorkflowError as exc:
                details = [m for ms in getattr(exc, "field_errors", {}).values() for m in ms]
                raise CommandError("\n".join([f"{path}: {exc.message}", *details])) from None
        versions = WorkflowDefinition.objects.filter(key=target)
        if version is not None:
            definition = versions.filter(version=version).first()
        else:
            definition = (
                versions.filter(status=DefinitionStatus.DRAFT).first()
                or versions.filter(status=DefinitionStatus.PUBLISHED).first()
            )
        if definition is None:
            known = versions.values_list("version", flat=True)
            if version is not None and known:
                raise CommandError(
                    f"{target} has no version {version} "
                    f"(it has {', '.join(str(v) for v in sorted(known))})"
                )
            if known:
                raise CommandError(f"{target} has no draft or published version; use --version")
            raise CommandError(
                f"no workflow definition with the key '{target}', and no file of that name"
            )
        return definition_config(definition), f"{definition.key} v{definition.version}"
