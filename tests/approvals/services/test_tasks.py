"""Claiming, deciding under each rule, delegating and reassigning."""

from __future__ import annotations

import pytest

from approvals.models import Decision, InstanceStatus, Task, TaskStatus
from approvals.permissions import can_view_instance
from approvals.services.audit import verify_instances
from approvals.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import (
    task_claim,
    task_decide,
    task_delegate,
    task_reassign,
    task_unclaim,
)
from tests.approvals.flows import NOW, multi_flow, publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(requester):
    publish(review_flow())
    return instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )


def only_task(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def test_reviewer_approves_and_the_request_completes(instance, reviewer):
    result = task_decide(task_id=only_task(instance).pk, event="APPROVE", actor=reviewer, now=NOW)
    assert result.moved
    assert result.instance.state == "approved"
    assert result.instance.status == InstanceStatus.COMPLETED
    assert result.instance.completed_at == NOW
    decision = Decision.objects.get()
    assert (decision.actor, decision.event, decision.task.status) == (reviewer, "APPROVE", "done")
    events = list(result.instance.audit_events.values_list("event", flat=True))
    assert events == [
        "instance.started",
        "task.created",
        "task.decided",
        "transition",
        "instance.completed",
    ]
    assert list(verify_instances([result.instance])) == []


def test_outsider_and_requester_are_refused_and_nothing_changes(instance, outsider, requester):
    task = only_task(instance)
    with pytest.raises(NotAllowed, match="not in a role"):
        task_decide(task_id=task.pk, event="APPROVE", actor=outsider, now=NOW)
    # The requester is made a manager too: forbid_requester still refuses.
    requester.groups.add(GroupFactory(name="manager"))
    with pytest.raises(NotAllowed, match="your own request"):
        task_decide(task_id=task.pk, event="APPROVE", actor=requester, now=NOW)
    with pytest.raises(NotAllowed):
        task_claim(task_id=task.pk, actor=outsider, now=NOW)
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and not Decision.objects.exists()
    assert instance.audit_events.count() == 2


def test_reject_needs_a_comment(instance, reviewer):
    task = only_task(instance)
    with pytest.raises(InvalidInput) as exc:
        task_decide(task_id=task.pk, event="REJECT", actor=reviewer, now=NOW)
    assert "comment" in exc.value.field_errors
    result = task_decide(
        task_id=task.pk, event="REJECT", comment="over budget", actor=reviewer, now=NOW
    )
    assert result.instance.status == InstanceStatus.REJECTED


def test_unknown_decision_lists_the_choices(instance, reviewer):
    with pytest.raises(InvalidInput) as exc:
        task_decide(task_id=only_task(instance).pk, event="PAY", actor=reviewer, now=NOW)
    assert exc.value.field_errors["decision"] == [
        "Choose one of: APPROVE, REJECT, REQUEST_CHANGES."
    ]


def test_second_decision_is_told_who_decided_first(instance, reviewer, reviewer2):
    task = only_task(instance)
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    with pytest.raises(AlreadyDecided, match=r"already decided by Rob Reviewer at .* \(APPROVE\)"):
        task_decide(task_id=task.pk, event="REJECT", comment="no", actor=reviewer2, now=NOW)


def test_changes_requested_loop_assigns_revisions(instance, reviewer, requester, outsider):
    task_decide(
        task_id=only_task(instance).pk,
        event="REQUEST_CHANGES",
        comment="add quote",
        actor=reviewer,
        now=NOW,
    )
    instance.refresh_from_db()
    assert instance.state == "changes"
    requester_task = only_task(instance)
    assert requester_task.for_requester and requester_task.assignee == requester
    with pytest.raises(NotAllowed, match="assigned to"):
        task_decide(task_id=requester_task.pk, event="RESUBMIT", actor=outsider, now=NOW)
    result = task_decide(task_id=requester_task.pk, event="RESUBMIT", actor=requester, now=NOW)
    assert result.instance.state == "review"
    assert result.instance.context["revisions"] == 1
    assert only_task(result.instance).visit > requester_task.visit


def test_claim_makes_the_task_personal_and_unclaim_returns_it(instance, reviewer, reviewer2):
    task = only_task(instance)
    task = task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    assert (task.status, task.assignee) == (TaskStatus.CLAIMED, reviewer)
    with pytest.raises(Conflict, match="already claimed by Rob Reviewer"):
        task_claim(task_id=task.pk, actor=reviewer2, now=NOW)
    with pytest.raises(NotAllowed, match="assigned to Rob Reviewer"):
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer2, now=NOW)
    with pytest.raises(NotAllowed):
        task_unclaim(task_id=task.pk, actor=reviewer2, now=NOW)
    task = task_unclaim(task_id=task.pk, actor=reviewer, now=NOW)
    assert (task.status, task.assignee) == (TaskStatus.OPEN, None)
    with pytest.raises(Conflict, match="not claimed"):
        task_unclaim(task_id=task.pk, actor=reviewer, now=NOW)
    assert task_decide(task_id=task.pk, event="APPROVE", actor=reviewer2, now=NOW).moved


def test_delegate_hands_over_and_keeps_the_delegator_informed(
    instance, reviewer, requester, outsider
):
    task = only_task(instance)
    with pytest.raises(InvalidInput, match="yourself"):
        task_delegate(task_id=task.pk, to_user_id=reviewer.pk, actor=reviewer, now=NOW)
    with pytest.raises(InvalidInput, match="requester"):
        task_delegate(task_id=task.pk, to_user_id=requester.pk, actor=reviewer, now=NOW)
    with pytest.raises(InvalidInput, match="no such user"):
        task_delegate(task_id=task.pk, to_user_id=999999, actor=reviewer, now=NOW)
    with pytest.raises(NotAllowed):
        task_delegate(task_id=task.pk, to_user_id=reviewer.pk, actor=outsider, now=NOW)

    helper = UserFactory(username="hal")
    successor = task_delegate(
        task_id=task.pk,
        to_user_id=helper.pk,
        actor=reviewer,
        comment="you know this vendor",
        now=NOW,
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.DELEGATED
    assert (successor.assignee, successor.delegated_by, successor.previous) == (
        helper,
        reviewer,
        task,
    )
    with pytest.raises(AlreadyDecided, match="delegated to"):
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert can_view_instance(reviewer, instance)
    assert can_view_instance(helper, instance)
    assert not can_view_instance(outsider, instance)
    assert task_decide(task_id=successor.pk, event="APPROVE", actor=helper, now=NOW).moved


def test_reassign_is_for_operators(instance, reviewer, operator, reviewer2):
    task = only_task(instance)
    with pytest.raises(NotAllowed):
        task_reassign(task_id=task.pk, to_user_id=reviewer2.pk, actor=reviewer, now=NOW)
    successor = task_reassign(task_id=task.pk, to_user_id=reviewer2.pk, actor=operator, now=NOW)
    assert successor.assignee == reviewer2
    back = task_reassign(task_id=successor.pk, to_user_id=None, actor=operator, now=NOW)
    assert back.status == TaskStatus.OPEN and back.assignee is None
    assert list(back.candidate_groups.values_list("name", flat=True)) == ["manager"]


def test_rule_all_needs_one_approval_per_role(requester, reviewer, reviewer2, security):
    publish(multi_flow("all", ["manager", "security"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    manager_task, security_task = instance.tasks.order_by("pk")
    assert [
        list(t.candidate_groups.values_list("name", flat=True))
        for t in (manager_task, security_task)
    ] == [["manager"], ["security"]]
    with pytest.raises(NotAllowed):
        task_decide(task_id=security_task.pk, event="APPROVE", actor=reviewer, now=NOW)
    first = task_decide(task_id=manager_task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert not first.moved and first.instance.state == "approval"
    second = task_decide(task_id=security_task.pk, event="APPROVE", actor=security, now=NOW)
    assert second.moved and second.instance.state == "granted"


def test_quorum_needs_distinct_approvers_and_one_reject_ends_it(requester, reviewer, reviewer2):
    publish(multi_flow({"quorum": 2}, ["manager"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    one, two = instance.tasks.order_by("pk")
    task_decide(task_id=one.pk, event="APPROVE", actor=reviewer, now=NOW)
    with pytest.raises(Conflict, match="already decided on this step"):
        task_decide(task_id=two.pk, event="APPROVE", actor=reviewer, now=NOW)
    result = task_decide(task_id=two.pk, event="REJECT", comment="no", actor=reviewer2, now=NOW)
    assert result.instance.status == InstanceStatus.REJECTED


def test_reject_under_rule_all_cancels_the_other_approvals(requester, reviewer, security):
    publish(multi_flow("all", ["manager", "security"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    manager_task, security_task = instance.tasks.order_by("pk")
    task_decide(task_id=manager_task.pk, event="REJECT", comment="no", actor=reviewer, now=NOW)
    security_task.refresh_from_db()
    assert security_task.status == TaskStatus.CANCELLED
    with pytest.raises(AlreadyDecided, match="already decided by Rob Reviewer"):
        task_decide(task_id=security_task.pk, event="APPROVE", actor=security, now=NOW)


def test_unknown_task_is_refused(reviewer):
    with pytest.raises(NotAllowed):
        task_decide(task_id=424242, event="APPROVE", actor=reviewer, now=NOW)


def test_no_task_goes_to_guardians_anonymous_user(instance, reviewer, admin_user, anonymous):
    task = only_task(instance)
    with pytest.raises(InvalidInput) as caught:
        task_delegate(task_id=task.pk, to_user_id=anonymous.pk, actor=reviewer, now=NOW)
    assert caught.value.field_errors == {"to": ["Choose an active user."]}
    with pytest.raises(InvalidInput):
        task_reassign(task_id=task.pk, to_user_id=anonymous.pk, actor=admin_user, now=NOW)
    assert only_task(instance).pk == task.pk and task.successors.count() == 0
