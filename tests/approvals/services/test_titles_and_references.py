"""A request's title from the definition's template, and its reference unique per workflow."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent, WorkflowInstance
from approvals.services.definitions import definition_new_version, definition_publish
from approvals.services.errors import InvalidInput
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TAKEN = {"business_key": ["Another request of this workflow already has the reference 'PO-1'."]}


def access_flow() -> dict:
    flow = review_flow()
    flow["id"] = "access"
    flow["title"] = "{system} · {level} · {requester}"
    flow["form"] = {
        "type": "object",
        "required": ["system"],
        "properties": {
            "system": {"type": "string", "title": "System"},
            "level": {"type": "string", "title": "Access level"},
            "revisions": {"type": "integer", "default": 0, "readOnly": True},
        },
    }
    return flow


def start(actor, key: str = "review", **kwargs):
    context = kwargs.pop("context", {"title": "Laptop", "amount": 10})
    return instance_start(definition_key=key, context=context, actor=actor, now=NOW, **kwargs)


def test_the_title_comes_from_the_template(requester):
    publish(access_flow())
    first = start(requester, "access", context={"system": "github", "level": "write"})
    other = UserFactory(username="bo", first_name="Bo", last_name="Berg")
    second = start(other, "access", context={"system": "github", "level": "write"})
    third = start(requester, "access", context={"system": "aws"})
    assert first.title == f"github · write · {requester.get_full_name()}"
    assert second.title == "github · write · Bo Berg"
    assert third.title == f"aws · {requester.get_full_name()}"
    assert first.definition.name == "Access"


def test_a_title_sent_with_the_request_wins_then_the_form_s_title_field(requester):
    publish(access_flow())
    named = start(requester, "access", context={"system": "vpn"}, title="  VPN for the trip ")
    assert named.title == "VPN for the trip"
    publish(review_flow())
    assert start(requester).title == "Laptop"
    assert start(requester, context={"title": "", "amount": 1}).title == "Review"


def test_resubmitting_changed_fields_renames_the_request(requester, reviewer):
    publish(access_flow())
    instance = start(requester, "access", context={"system": "github", "level": "read"})
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="Which level?",
        actor=reviewer,
        now=NOW,
    )
    own = instance.tasks.get(status="claimed")
    task_decide(
        task_id=own.pk,
        event="RESUBMIT",
        comment="",
        form={"system": "github", "level": "admin"},
        actor=requester,
        now=NOW,
    )
    instance.refresh_from_db()
    assert instance.title == f"github · admin · {requester.get_full_name()}"


def test_a_business_key_is_unique_per_workflow_across_versions(requester, reviewer, admin_user):
    definition = publish(review_flow())
    first = start(requester, business_key=" PO-1 ")
    assert first.business_key == "PO-1" and first.workflow_key == "review"
    with pytest.raises(InvalidInput) as refused:
        start(reviewer, business_key="PO-1")
    assert refused.value.field_errors == TAKEN
    draft = definition_new_version(definition_id=definition.pk, actor=admin_user)
    definition_publish(definition_id=draft.pk, actor=admin_user, now=NOW)
    with pytest.raises(InvalidInput) as refused:
        start(requester, business_key="PO-1")
    assert refused.value.field_errors == TAKEN
    assert WorkflowInstance.objects.count() == 1
    assert AuditEvent.objects.filter(event="instance.started").count() == 1


def test_the_same_reference_in_another_workflow_and_no_reference_are_fine(requester):
    publish(review_flow())
    publish(access_flow())
    start(requester, business_key="PO-1")
    start(requester, "access", context={"system": "vpn"}, business_key="PO-1")
    start(requester)
    start(requester)
    assert WorkflowInstance.objects.filter(business_key="").count() == 2


def test_a_reference_too_long_is_refused(requester):
    publish(review_flow())
    with pytest.raises(InvalidInput) as refused:
        start(requester, business_key="x" * 101)
    assert refused.value.field_errors == {"business_key": ["At most 100 characters."]}
    assert not WorkflowInstance.objects.exists()
