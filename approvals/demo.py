"""Demo data for the engine: the shipped example definitions, and the operator's powers."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_import, definition_parse

EXAMPLES_DIR = Path(__file__).resolve().parent / "workflows"
OPERATOR_PERMISSIONS = ("cancel_instance", "reassign_task", "send_event", "view_workflowinstance")


def example_files() -> list[Path]:
    return sorted([*EXAMPLES_DIR.glob("*.yaml"), *EXAMPLES_DIR.glob("*.json")])


def ensure_demo_workflows() -> list[WorkflowDefinition]:
    """Publish every shipped example (a no-op for those already published as they are)."""
    operator, _ = Group.objects.get_or_create(name="operator")
    operator.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="approvals", codename__in=OPERATOR_PERMISSIONS
        )
    )
    return [
        definition_import(
            config=definition_parse(path.read_text(), filename=path.name),
            actor=None,
            publish=True,
            now=timezone.now(),
        )
        for path in example_files()
    ]
