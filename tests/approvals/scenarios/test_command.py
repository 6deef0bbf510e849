"""`manage.py test_workflow KEY|FILE`: runs a definition's scenarios in memory."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.machine import dump_document
from approvals.services.definitions import definition_import
from tests.approvals.scenarios.helpers import APPROVED, RESUBMITTED, WRONG, flow_with
from tests.factories import GroupFactory

WORKFLOWS = Path(__file__).resolve().parents[3] / "approvals" / "workflows"


def write(tmp_path: Path, *scenarios, name: str = "review.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dump_document(flow_with(*scenarios), fmt="yaml"), encoding="utf-8")
    return path


def run(*args: str) -> str:
    out = StringIO()
    call_command("test_workflow", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_a_file_whose_scenarios_pass_exits_zero(tmp_path):
    out = run(str(write(tmp_path, APPROVED, RESUBMITTED)))
    assert "PASS a manager approves" in out
    assert "PASS sent back and resubmitted" in out
    assert "2 scenario(s) of" in out and "passed" in out


@pytest.mark.django_db
def test_a_failing_scenario_is_named_with_its_first_difference(tmp_path):
    path = write(tmp_path, APPROVED, WRONG)
    out = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("test_workflow", str(path), stdout=out)
    assert "PASS a manager approves" in out.getvalue()
    assert "FAIL expects the wrong end: expect.state: expected approved, got rejected" in (
        out.getvalue()
    )
    assert str(failed.value) == (
        f"1 of 2 scenario(s) of {path} failed; first: 'expects the wrong end': "
        "expect.state: expected approved, got rejected"
    )


@pytest.mark.django_db
@pytest.mark.parametrize("example", sorted(p.name for p in WORKFLOWS.glob("*.yaml")))
def test_the_shipped_examples_pass_with_every_transition_covered(example):
    out = run(str(WORKFLOWS / example), "--coverage")
    assert "FAIL" not in out
    assert "every transition is covered" in out


@pytest.mark.django_db
def test_a_key_runs_its_draft_else_its_published_version(tmp_path):
    GroupFactory(name="manager")
    GroupFactory(name="director")
    definition_import(config=flow_with(APPROVED), actor=None, publish=True, now=timezone.now())
    assert "PASS a manager approves" in run("review")
    # A draft with a failing scenario is what `review` now means; v1 is still asked for by
    # --version.
    definition_import(config=flow_with(WRONG), actor=None, now=timezone.now())
    with pytest.raises(CommandError, match="'expects the wrong end'"):
        run("review")
    assert "PASS a manager approves" in run("review", "--version", "1")
    with pytest.raises(CommandError, match=r"review has no version 7 \(it has 1, 2\)"):
        run("review", "--version", "7")


@pytest.mark.django_db
def test_bad_input_is_a_clear_message(tmp_path):
    with pytest.raises(
        CommandError, match="no workflow definition with the key 'nope', and no file of that name"
    ):
        run("nope")
    with pytest.raises(CommandError, match="missing.yaml: No such file or directory"):
        run(str(tmp_path / "missing.yaml"))
    broken = flow_with({**APPROVED, "steps": [{"decide": "APROVE", "as_role": "manager"}]})
    path = tmp_path / "broken.yaml"
    path.write_text(dump_document(broken, fmt="yaml"), encoding="utf-8")
    with pytest.raises(CommandError) as failed:
        run(str(path))
    assert "the event *APROVE* is accepted by no step" in str(failed.value)
    not_offered = tmp_path / "offered.yaml"
    not_offered.write_text(
        dump_document(
            flow_with({**APPROVED, "steps": [{"decide": "APPROVE", "as_role": "director"}]}),
            fmt="yaml",
        ),
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="no open task is offered to the role director"):
        run(str(not_offered))
    path = write(tmp_path)
    assert "has no scenarios" in run(str(path))


def row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for app in ("approvals", "accounts", "auth")
        for model in apps.get_app_config(app).get_models()
    }


@pytest.mark.django_db(transaction=True)
def test_nothing_is_written_and_no_transaction_is_needed(tmp_path):
    """Outside any test transaction (nothing to roll back), every table keeps its rows and
    the command sends nothing but SELECTs, for a file and for a stored definition."""
    GroupFactory(name="manager")
    GroupFactory(name="director")
    definition_import(
        config=flow_with(APPROVED, RESUBMITTED), actor=None, publish=True, now=timezone.now()
    )
    path = write(tmp_path, APPROVED, RESUBMITTED)
    assert not connection.in_atomic_block
    before = row_counts()
    with CaptureQueriesContext(connection) as queries:
        assert "2 scenario(s)" in run(str(path))
        assert "2 scenario(s)" in run("review")
    assert row_counts() == before
    statements = [q["sql"].lstrip().split()[0].upper() for q in queries.captured_queries]
    assert statements and set(statements) == {"SELECT"}
