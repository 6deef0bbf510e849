"""Definitions: import, validation, publishing, versions and pinning."""

from __future__ import annotations

import pytest

from approvals.models import DefinitionStatus, WorkflowDefinition
from approvals.services.definitions import (
    definition_config,
    definition_import,
    definition_new_version,
    definition_problems,
    definition_publish,
    definition_retire,
)
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


def test_import_reports_every_problem_by_place(db):
    config = review_flow()
    config["states"]["review"]["on"]["APPROVE"] = "aproved"
    config["states"]["review"]["meta"]["task"]["roles"] = ["managr"]
    with pytest.raises(InvalidInput) as exc:
        definition_import(config=config, actor=None, now=NOW)
    problems = exc.value.field_errors["definition"]
    assert problems == [
        # No role exists yet in this database, so there is nothing to suggest.
        "Step *Review*, its task's roles: the role *managr* does not exist "
        "(states.review.meta.task.roles)",
        "Step *Review*: the *Approve* arrow points to *aproved*, which does not exist; did you "
        "mean *approved*? (states.review.on.APPROVE)",
    ]
    assert not WorkflowDefinition.objects.exists()


def test_unknown_outcome_is_refused(db):
    config = review_flow()
    config["states"]["rejected"]["meta"]["outcome"] = "lost"
    publish_roles = publish  # creates roles; the import itself must fail
    with pytest.raises(InvalidInput) as exc:
        publish_roles(config)
    assert exc.value.field_errors["definition"] == [
        "Step *Rejected*, its outcome: 'lost' is not one of "
        "completed, rejected, cancelled, withdrawn (states.rejected.meta.outcome)"
    ]


def _posting_flow(*, webhook_url: str, input_url: str) -> dict:
    return {
        "id": "posting",
        "title": "Posting",
        "initial": "posting",
        "settings": {"webhook_url": webhook_url},
        "states": {
            "posting": {
                "entry": ["webhook"],
                "invoke": {"src": "webhook", "input": {"url": input_url}, "onDone": "done"},
            },
            "done": {"type": "final"},
        },
    }


def test_a_webhook_to_a_private_address_is_refused_when_validated(db, settings):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    config = _posting_flow(webhook_url="http://192.168.0.10/erp", input_url="http://[::1]:9000/x")
    with pytest.raises(InvalidInput) as exc:
        definition_import(config=config, actor=None, publish=True, now=NOW)
    policy = (
        "webhook targets must be public addresses (set ALLOW_PRIVATE_WEBHOOK_TARGETS=true to "
        "allow private ones)"
    )
    assert exc.value.field_errors["definition"] == [
        f"The settings: http://192.168.0.10/erp is refused: 192.168.0.10 is a private "
        f"address; {policy} (settings.webhook_url)",
        f"Step *Posting*, its action: http://[::1]:9000/x is refused: ::1 is a loopback "
        f"address; {policy} (states.posting.invoke.input.url)",
    ]
    assert not WorkflowDefinition.objects.exists()

    public = _posting_flow(
        webhook_url="https://erp.example.com/hooks", input_url="https://8.8.8.8/"
    )
    assert definition_problems(public) == []
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    assert definition_problems(config) == []
    metadata = _posting_flow(webhook_url="http://169.254.169.254/", input_url="https://8.8.8.8/")
    (problem,) = definition_problems(metadata)
    assert problem.startswith("The settings: http://169.254.169.254/ is refused: ")
    assert problem.endswith(" (settings.webhook_url)")
    assert "169.254.169.254 is a cloud metadata address" in problem


def test_published_versions_are_immutable_and_instances_stay_pinned(requester, reviewer):
    v1 = publish(review_flow())
    assert (v1.version, v1.status) == (1, DefinitionStatus.PUBLISHED)
    old = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )

    draft = definition_new_version(definition_id=v1.pk, actor=None)
    assert (draft.version, draft.status) == (2, DefinitionStatus.DRAFT)
    with pytest.raises(Conflict, match="already exists"):
        definition_new_version(definition_id=v1.pk, actor=None)
    # v2 drops the changes loop: REQUEST_CHANGES disappears.
    config = definition_config(draft)
    del config["states"]["review"]["on"]["REQUEST_CHANGES"]
    del config["states"]["changes"]
    del config["states"]["withdrawn"]
    definition_import(config=config, actor=None, now=NOW)
    v2 = definition_publish(definition_id=draft.pk, actor=None, now=NOW)
    v1.refresh_from_db()
    assert v1.status == DefinitionStatus.RETIRED and v2.status == DefinitionStatus.PUBLISHED

    new = instance_start(
        definition_key="review", context={"title": "b", "amount": 1}, actor=requester, now=NOW
    )
    assert new.definition == v2
    # The old instance still accepts what v1 allowed.
    result = task_decide(
        task_id=old.tasks.get().pk, event="REQUEST_CHANGES", comment="why", actor=reviewer, now=NOW
    )
    assert result.instance.state == "changes"
    with pytest.raises(InvalidInput):
        task_decide(
            task_id=new.tasks.get().pk,
            event="REQUEST_CHANGES",
            comment="why",
            actor=reviewer,
            now=NOW,
        )


def test_publishing_twice_or_an_invalid_draft_is_refused(db):
    v1 = publish(review_flow())
    with pytest.raises(Conflict, match="not a draft"):
        definition_publish(definition_id=v1.pk, actor=None, now=NOW)
    draft = definition_new_version(definition_id=v1.pk, actor=None)
    draft.states.filter(path="approved").delete()
    with pytest.raises(InvalidInput) as exc:
        definition_publish(definition_id=draft.pk, actor=None, now=NOW)
    assert (
        "Step *Review*: the *Approve* arrow points to *approved*, which does not exist "
        "(states.review.on.APPROVE[0].target)"
    ) in exc.value.field_errors["definition"]
    draft.refresh_from_db()
    assert draft.status == DefinitionStatus.DRAFT


def test_importing_the_published_content_again_creates_nothing(db):
    v1 = publish(review_flow())
    again = definition_import(config=review_flow(), actor=None, publish=True, now=NOW)
    assert again.pk == v1.pk
    assert WorkflowDefinition.objects.count() == 1


def test_retire_stops_new_requests(requester):
    v1 = publish(review_flow())
    definition_retire(definition_id=v1.pk, actor=None)
    with pytest.raises(InvalidInput, match="no published workflow"):
        instance_start(
            definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
        )


def test_rows_round_trip_to_the_same_config(db):
    v1 = publish(review_flow())
    config = definition_config(v1)
    assert config["states"]["changes"]["on"]["RESUBMIT"] == {
        "target": "review",
        "assign": {"revisions": "revisions + 1"},
    }
    copy = definition_new_version(definition_id=v1.pk, actor=None)
    assert definition_config(copy) == config


def test_unknown_definition_ids_are_refused(db):
    for service in (definition_new_version, definition_retire):
        with pytest.raises(NotAllowed, match="no such workflow definition"):
            service(definition_id=424242, actor=None)
    with pytest.raises(NotAllowed):
        definition_publish(definition_id=424242, actor=None, now=NOW)


def test_a_state_row_whose_parent_is_gone_is_named_not_fatal(db):
    v1 = publish(review_flow())
    draft = definition_new_version(definition_id=v1.pk, actor=None)
    draft.states.filter(path="changes").update(path="gone.changes")
    config = definition_config(draft)
    assert "gone.changes" in config["states"]
    problems = definition_problems(config)
    assert "The steps: invalid state name 'gone.changes'" in " ".join(problems)
