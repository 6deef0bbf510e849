"""import_workflow, export_workflow: every shipped example round-trips losslessly."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.demo import ensure_demo_workflows, example_files
from approvals.models import DefinitionStatus, WorkflowDefinition
from approvals.services.definitions import definition_config
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db
ROLES = ["manager", "director", "finance", "operator", "warehouse", "shipping", "security"]


@pytest.fixture(autouse=True)
def roles(db: None) -> None:
    for role in ROLES:
        GroupFactory(name=role)


def export(key: str, fmt: str, *extra: str) -> str:
    out = StringIO()
    call_command("export_workflow", key, "--format", fmt, *extra, stdout=out)
    return out.getvalue()


def test_there_are_shipped_examples() -> None:
    assert len(example_files()) >= 3


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_export_then_import_gives_the_same_definition(path: Path, fmt: str, tmp_path: Path):
    # An example may start a sub-request of another: the files before it are published first.
    for earlier in example_files()[: example_files().index(path)]:
        call_command("import_workflow", str(earlier), "--publish", stdout=StringIO())
    call_command("import_workflow", str(path), "--publish", stdout=StringIO())
    original = WorkflowDefinition.objects.filter(status=DefinitionStatus.PUBLISHED).latest("pk")
    exported = tmp_path / f"again.{fmt}"
    exported.write_text(export(original.key, fmt))

    WorkflowDefinition.objects.filter(pk=original.pk).update(key="renamed")
    call_command("import_workflow", str(exported), stdout=StringIO())
    again = WorkflowDefinition.objects.get(key=original.key)
    assert again.status == DefinitionStatus.DRAFT
    assert definition_config(again) == definition_config(
        WorkflowDefinition.objects.get(pk=original.pk)
    ) | {"id": original.key}


def test_import_of_a_bad_file_names_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: bad\ntitle: Bad\ninitial: start\nstates:\n  start:\n    on: {GO: nowhere}\n"
    )
    with pytest.raises(CommandError) as caught:
        call_command("import_workflow", str(bad))
    # Every problem at once, in words first: not only the unknown target.
    assert str(caught.value).splitlines()[1:] == [
        "Step *Start*: the *Go* arrow points to *nowhere*, which does not exist "
        "(states.start.on.GO)",
        "The steps: there is no final step, so no request can ever finish (states)",
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    with pytest.raises(CommandError, match="line"):
        call_command("import_workflow", str(broken))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_workflow", str(tmp_path / "missing.yaml"))
    assert not WorkflowDefinition.objects.exists()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_import_of_a_deeply_nested_file_is_a_clear_error(tmp_path: Path, suffix: str) -> None:
    deep = tmp_path / f"deep{suffix}"
    deep.write_text('{"id": "deep", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CommandError, match=r"deep\.(json|yaml): the document is nested too deep"):
        call_command("import_workflow", str(deep))
    parseable = tmp_path / f"parseable{suffix}"
    parseable.write_text('{"id": "deep", "meta": ' + "[" * 200 + "]" * 200 + "}")
    with pytest.raises(CommandError, match="nested more than 64 levels deep"):
        call_command("import_workflow", str(parseable))
    assert not WorkflowDefinition.objects.exists()


def test_export_of_an_unknown_key_or_version_fails() -> None:
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        export("nope", "yaml")
    ensure_demo_workflows()
    key = WorkflowDefinition.objects.first().key
    with pytest.raises(CommandError, match="version 9"):
        export(key, "yaml", "--version", "9")


def test_demo_workflows_load_once() -> None:
    first = ensure_demo_workflows()
    second = ensure_demo_workflows()
    assert [d.pk for d in first] == [d.pk for d in second]
    assert WorkflowDefinition.objects.count() == len(example_files())
