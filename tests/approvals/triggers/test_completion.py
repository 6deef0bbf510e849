"""on_complete_start: a request ending in that final state starts another workflow after
commit, its form from `input` (the sub-workflow input code), as the same requester."""

from __future__ import annotations

import pytest
from django.utils import timezone

from approvals.history import timeline
from approvals.models import (
    AuditEvent,
    OutboxMessage,
    OutboxStatus,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.audit import verify_instances
from approvals.services.definitions import definition_config, definition_retire
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish
from tests.approvals.subflows.flows import open_task
from tests.approvals.triggers.flows import (
    deliver_completion_starts,
    drafting_flow,
    research_flow,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def research(reviewer):
    drafting = publish(drafting_flow())
    publish(research_flow())
    return drafting


def decide(request, event, reviewer):
    task_decide(task_id=open_task(request).pk, event=event, actor=reviewer, now=NOW, comment="seen")


def test_ending_there_starts_the_other_workflow_after_commit(
    research, requester, reviewer, django_capture_on_commit_callbacks
):
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    with django_capture_on_commit_callbacks() as callbacks:
        decide(request, "APPROVE", reviewer)
    message = OutboxMessage.objects.get(topic="trigger.complete_start")
    assert message.status == OutboxStatus.PENDING and callbacks
    assert WorkflowInstance.objects.count() == 1

    assert deliver_completion_starts(NOW) == ["done"]
    drafting = WorkflowInstance.objects.get(workflow_key="drafting")
    assert drafting.context == {"subject": "Tides (draft)"}
    assert (drafting.requester, drafting.state) == (requester, "write")
    started = AuditEvent.objects.get(instance=drafting, event="instance.started")
    assert started.data["trigger"]["completion_of"] == request.pk
    link = AuditEvent.objects.get(instance=request, event="trigger.started")
    assert link.data["request"] == drafting.pk
    # Delivered once: a second delivery of the same message starts nothing.
    assert deliver_completion_starts(NOW) == []
    assert list(verify_instances([request.pk, drafting.pk])) == []


def test_another_final_state_starts_nothing(research, requester, reviewer):
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    decide(request, "REJECT", reviewer)
    assert not OutboxMessage.objects.filter(topic="trigger.complete_start").exists()


def test_a_workflow_that_cannot_start_is_recorded_and_nothing_half_started(
    research, requester, reviewer, admin_user
):
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    definition_retire(definition_id=research.pk, actor=admin_user)
    decide(request, "APPROVE", reviewer)
    assert deliver_completion_starts(NOW) == ["failed"]
    assert not WorkflowInstance.objects.filter(workflow_key="drafting").exists()
    failed = AuditEvent.objects.get(instance=request, event="trigger.failed")
    assert "there is no published workflow drafting" in failed.data["error"]
    message = OutboxMessage.objects.get(topic="trigger.complete_start")
    assert message.status == OutboxStatus.FAILED and "drafting" in message.last_error


def test_an_input_that_fails_at_run_time_is_recorded(reviewer, requester):
    publish(drafting_flow())
    publish(research_flow(workflow="drafting", input={"subject": "missing_field + 'x'"}))
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    decide(request, "APPROVE", reviewer)
    assert deliver_completion_starts(NOW) == ["failed"]
    failed = AuditEvent.objects.get(instance=request, event="trigger.failed")
    assert "input subject = 'missing_field + 'x'' failed" in failed.data["error"]


def test_the_trigger_round_trips_through_the_rows(research):
    config = definition_config(WorkflowDefinition.objects.get(key="research"))
    assert config["states"]["approved"]["on_complete_start"] == {
        "workflow": "drafting",
        "input": {"subject": "topic + ' (draft)'"},
    }


def test_the_history_says_what_started_what(research, requester, reviewer):
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    decide(request, "APPROVE", reviewer)
    deliver_completion_starts(NOW)
    drafting = WorkflowInstance.objects.get(workflow_key="drafting")
    assert timeline(drafting)[0].text == f"Started when request #{request.pk} ended in approved"
    assert timeline(request)[-1].text == (
        f"Started request #{drafting.pk} (drafting version {drafting.definition.version})"
    )


def test_through_the_api_the_decision_ends_one_request_and_starts_the_next(
    research, requester, reviewer, outsider, api
):
    request = instance_start(
        definition_key="research", context={"topic": "Tides"}, actor=requester, now=NOW
    )
    task = open_task(request)
    response = api(reviewer).post(
        f"/api/v1/tasks/{task.pk}/decide/",
        {"decision": "APPROVE", "comment": "good"},
        format="json",
    )
    assert response.status_code == 200, response.content
    # The API decides at the real time: the message is due from then.
    assert deliver_completion_starts(timezone.now()) == ["done"]
    drafting = WorkflowInstance.objects.get(workflow_key="drafting")
    seen = api(requester).get(f"/api/v1/instances/{drafting.pk}/")
    assert seen.status_code == 200
    assert seen.json()["context"] == {"subject": "Tides (draft)"}
    assert api(outsider).get(f"/api/v1/instances/{drafting.pk}/").status_code == 404
