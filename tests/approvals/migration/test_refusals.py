"""A refused mapping exits non-zero naming what is wrong and changes nothing; a request that
fails a check is left untouched and listed with the reason."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from approvals.models import AuditEvent, WorkflowInstance
from approvals.services.definitions import definition_import
from tests.approvals.flows import NOW, parallel_flow, publish, review_flow
from tests.approvals.migration.conftest import migrate, next_version, refused, renamed_flow, start

pytestmark = pytest.mark.django_db


def _snapshot() -> tuple:
    return (
        AuditEvent.objects.count(),
        list(WorkflowInstance.objects.values_list("pk", "definition_id", "state", "version")),
    )


@pytest.fixture
def two_versions(rita):
    publish(review_flow())
    start(rita, 2)
    next_version(renamed_flow())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "review"], "mapping 'review' is not old_state=new_state"),
        (["--map", "=manager_review"], "mapping '=manager_review' is not old_state=new_state"),
        (["--map", "review=a=b"], "is not old_state=new_state"),
        (
            ["--map", "review=manager_review", "--map", "review=director"],
            "mapping names 'review' twice",
        ),
        (
            ["--map", "nowhere=manager_review"],
            "--map nowhere=manager_review: v1 has no state 'nowhere'",
        ),
        (["--map", "review=nowhere"], "--map review=nowhere: v2 has no state 'nowhere'"),
        (
            ["--map", "review=approved"],
            "'approved' is a final state; a migration does not end requests",
        ),
    ],
)
def test_a_bad_mapping_is_refused_and_nothing_changes(two_versions, args, message):
    before = _snapshot()

    error = refused("review", "--from", "1", "--to", "2", *args)

    assert message in error
    assert "nothing was changed" in error
    assert _snapshot() == before


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        (["--from", "1", "--to", "7"], "review has no version 7 (it has 1, 2)"),
        (["--from", "9", "--to", "2"], "review has no version 9 (it has 1, 2)"),
        (["--from", "2", "--to", "2"], "--from and --to are both version 2"),
        (["--from", "2", "--to", "1"], "review v1 is retired; requests move only to the published"),
    ],
)
def test_versions_that_do_not_fit_are_refused(two_versions, versions, message):
    before = _snapshot()

    assert message in refused("review", *versions)
    assert _snapshot() == before


def test_a_draft_is_neither_source_nor_target(two_versions):
    config = renamed_flow()
    config["title"] = "Draft"
    definition_import(config=config, actor=None, now=NOW)

    assert "review v3 is draft; requests move only to the published" in refused(
        "review", "--from", "1", "--to", "3"
    )
    assert "review v3 is a draft; it has no requests" in refused(
        "review", "--from", "3", "--to", "2"
    )


def test_an_unknown_workflow_is_refused(db):
    assert "no workflow definition with the key 'nope'" in refused(
        "nope", "--from", "1", "--to", "2"
    )


def test_bad_request_ids_are_refused(two_versions):
    with pytest.raises(CommandError, match="give request ids separated by commas"):
        migrate("review", "--from", "1", "--to", "2", "--only", "a,b")


def test_states_of_different_kinds_are_refused(db):
    publish(review_flow())
    flow = parallel_flow()
    flow["id"] = "review"
    next_version(flow)

    message = refused("review", "--from", "1", "--to", "2", "--map", "review=fulfillment")

    assert "'review' is a top-level state but 'fulfillment' is a parallel state" in message


def test_a_request_whose_state_is_gone_is_left_untouched_with_the_reason(two_versions):
    before = _snapshot()

    message = refused("review", "--from", "1", "--to", "2")

    assert "0 request(s) migrated from v1 to v2, 2 left as they are" in message
    assert _snapshot() == before


def test_the_reason_is_listed_per_request(two_versions):
    first = WorkflowInstance.objects.order_by("pk").first()
    out, _ = migrate("review", "--from", "1", "--to", "2", "--dry-run")

    assert (
        f"#{first.pk} r0: refused: its state 'review' does not exist in v2; "
        "map it with --map review=<state of v2>"
    ) in out
    assert "0 request(s) would be migrated from v1 to v2, 2 refused" in out


def test_data_that_no_longer_fits_the_form_is_refused_per_request(rita):
    publish(review_flow())
    small, large = start(rita, 1, amount=50) + start(rita, 1, amount=5000)
    flow = review_flow()
    flow["form"]["properties"]["amount"]["maximum"] = 1000
    flow["form"]["properties"]["cost_centre"] = {"type": "string", "default": "CC-1"}
    next_version(flow)
    events = large.audit_events.count()

    with pytest.raises(CommandError) as caught:
        migrate("review", "--from", "1", "--to", "2")

    assert "1 request(s) migrated from v1 to v2, 1 left as they are" in str(caught.value)
    large.refresh_from_db()
    small.refresh_from_db()
    assert large.definition.version == 1
    assert large.audit_events.count() == events
    assert small.definition.version == 2
    assert small.context["cost_centre"] == "CC-1"
    assert small.audit_events.get(event="instance.migrated").data["defaults"] == {
        "cost_centre": "CC-1"
    }
