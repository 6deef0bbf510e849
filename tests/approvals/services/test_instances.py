"""Starting requests, routing, guards, external events, withdrawing and cancelling."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import AuditEvent, InstanceStatus, OutboxMessage, Task, TaskStatus, Timer
from approvals.services.audit import verify_instances
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import (
    instance_cancel,
    instance_send_event,
    instance_start,
    instance_withdraw,
)
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow, routed_flow

pytestmark = pytest.mark.django_db


def start(requester, key="review", **context):
    return instance_start(definition_key=key, context=context, actor=requester, now=NOW)


def test_start_fills_defaults_creates_the_task_and_audits(requester):
    publish(review_flow())
    instance = start(requester, title="Laptop", amount=1200)

    assert instance.state == "review"
    assert instance.status == InstanceStatus.ACTIVE
    assert instance.title == "Laptop"
    assert instance.context == {"title": "Laptop", "amount": 1200, "revisions": 0}
    task = instance.tasks.get()
    assert task.status == TaskStatus.OPEN
    assert [g.name for g in task.candidate_groups.all()] == ["manager"]
    events = list(instance.audit_events.values_list("event", flat=True))
    assert events == ["instance.started", "task.created"]
    topics = set(OutboxMessage.objects.filter(instance=instance).values_list("topic", flat=True))
    assert topics == {"instance.started", "task.created"}
    assert list(verify_instances([instance])) == []


@pytest.mark.parametrize(
    ("context", "field", "message"),
    [
        ({"amount": 5}, "title", "required"),
        ({"title": "x", "amount": -1}, "amount", "minimum"),
        ({"title": "x", "amount": "ten"}, "amount", "not of type"),
        ({"title": "x" * 201, "amount": 1}, "title", "too long"),
    ],
)
def test_bad_request_data_names_the_field_and_writes_nothing(requester, context, field, message):
    publish(review_flow())
    with pytest.raises(InvalidInput) as exc:
        start(requester, **context)
    assert field in exc.value.field_errors
    assert message in " ".join(exc.value.field_errors[field]).lower()
    assert not Task.objects.exists() and not AuditEvent.objects.exists()


def test_unknown_or_unpublished_workflow_is_refused(requester):
    with pytest.raises(InvalidInput, match="no published workflow 'nope'"):
        start(requester, key="nope")


def test_anonymous_cannot_start(db):
    from django.contrib.auth.models import AnonymousUser

    publish(review_flow())
    with pytest.raises(NotAllowed):
        instance_start(
            definition_key="review",
            context={"title": "x", "amount": 1},
            actor=AnonymousUser(),
            now=NOW,
        )


def test_always_routes_by_guard_on_entry(requester):
    publish(routed_flow())
    small = start(requester, key="routed", amount=10)
    large = start(requester, key="routed", amount=5000)
    assert small.state == "finance"
    assert large.state == "manager"
    transition = small.audit_events.get(event="transition")
    assert (transition.from_state, transition.to_state) == ("submitted", "finance")
    assert transition.data["trigger"] == "always"


def test_sla_and_reminder_are_stored_as_due_times(requester):
    publish(routed_flow())
    task = start(requester, key="routed", amount=5000).tasks.get()
    assert task.due_at == NOW + timedelta(days=2)
    assert task.next_remind_at == NOW + timedelta(days=1)


def test_guard_failing_at_run_time_refuses_the_start_and_writes_nothing(requester):
    publish(routed_flow())
    with pytest.raises(Conflict, match="guard 'amount < 1000' of submitted .*failed"):
        start(requester, key="routed")  # no amount: the guard cannot be evaluated
    assert not AuditEvent.objects.exists()


def test_external_event_with_guard_assign_and_timer(requester, finance, operator):
    publish(routed_flow())
    instance = start(requester, key="routed", amount=100)
    instance = task_decide(
        task_id=instance.tasks.get().pk, event="APPROVE", actor=finance, now=NOW
    ).instance
    assert instance.state == "awaiting_payment"
    timer = Timer.objects.get(instance=instance)
    assert (timer.delay, timer.due_at) == ("P7D", NOW + timedelta(days=7))

    with pytest.raises(Conflict, match="Payment received is not possible now"):
        instance_send_event(
            instance_id=instance.pk,
            event="PAYMENT_RECEIVED",
            data={"amount": 50},
            actor=operator,
            now=NOW,
        )
    instance = instance_send_event(
        instance_id=instance.pk,
        event="PAYMENT_RECEIVED",
        data={"amount": 100},
        actor=operator,
        now=NOW,
    )
    assert instance.state == "paid"
    assert instance.status == InstanceStatus.COMPLETED
    assert instance.context["paid"] == 100
    timer.refresh_from_db()
    assert timer.cancelled_at == NOW
    audit = instance.audit_events.get(event="transition", to_state="paid")
    assert audit.data["data"] == {"amount": 100}
    assert list(verify_instances([instance])) == []


def test_external_event_refusals(requester, operator, outsider, reviewer):
    publish(routed_flow())
    instance = start(requester, key="routed", amount=5000)
    with pytest.raises(NotAllowed):
        instance_send_event(instance_id=instance.pk, event="APPROVE", actor=outsider, now=NOW)
    with pytest.raises(Conflict, match="decision of its task"):
        instance_send_event(instance_id=instance.pk, event="APPROVE", actor=operator, now=NOW)
    with pytest.raises(Conflict) as exc:
        instance_send_event(
            instance_id=instance.pk, event="PAYMENT_RECEIVED", actor=operator, now=NOW
        )
    assert exc.value.current_state == "manager"
    assert exc.value.accepted_events == ["APPROVE", "REJECT"]
    with pytest.raises(InvalidInput):
        instance_send_event(instance_id=instance.pk, event="X", data=[1], actor=operator, now=NOW)
    instance.refresh_from_db()
    assert instance.state == "manager" and instance.audit_seq == 3


def test_requester_withdraws_and_others_cannot(requester, reviewer, outsider):
    """From a state without a WITHDRAW of its own, the request goes to the definition's
    withdrawn state, and reads Withdrawn (not "Cancelled · at Manager approval")."""
    publish(review_flow())
    instance = start(requester, title="x", amount=1)
    for someone in (reviewer, outsider):
        with pytest.raises(NotAllowed):
            instance_withdraw(instance_id=instance.pk, actor=someone, now=NOW)
    assert instance.audit_events.count() == 2
    instance = instance_withdraw(
        instance_id=instance.pk, actor=requester, comment="no longer", now=NOW
    )
    assert (instance.state, instance.status) == ("withdrawn", InstanceStatus.WITHDRAWN)
    assert instance.get_status_display() == "Withdrawn"
    assert instance.tasks.get().status == TaskStatus.CANCELLED
    move = instance.audit_events.get(event="transition")
    assert (move.from_state, move.to_state) == ("review", "withdrawn")
    assert move.data["event"] == "WITHDRAW" and move.data["data"] == {"comment": "no longer"}
    assert instance.audit_events.last().data["outcome"] == "withdrawn"
    with pytest.raises(Conflict, match="already withdrawn"):
        instance_withdraw(instance_id=instance.pk, actor=requester, now=NOW)
    assert list(verify_instances([instance])) == []


def test_withdraw_uses_the_definitions_withdraw_event_where_there_is_one(requester, reviewer):
    publish(review_flow())
    instance = start(requester, title="x", amount=1)
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="more detail",
        actor=reviewer,
        now=NOW,
    )
    instance = instance_withdraw(instance_id=instance.pk, actor=requester, now=NOW)
    assert instance.state == "withdrawn"
    assert instance.status == InstanceStatus.WITHDRAWN


def test_the_requesters_withdraw_decision_ends_the_same_way(requester, reviewer):
    """The "Withdraw" beside "Resubmit" (a decision of the requester's own task) and the
    request page's Withdraw give one outcome."""
    publish(review_flow())
    instance = start(requester, title="x", amount=1)
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="more detail",
        actor=reviewer,
        now=NOW,
    )
    own = instance.tasks.get(status=TaskStatus.CLAIMED)
    task_decide(task_id=own.pk, event="WITHDRAW", actor=requester, now=NOW)
    instance.refresh_from_db()
    assert (instance.state, instance.status) == ("withdrawn", InstanceStatus.WITHDRAWN)


def test_withdraw_without_a_withdrawn_state_ends_where_it_is(requester):
    config = review_flow()
    del config["states"]["withdrawn"]
    del config["states"]["changes"]["on"]["WITHDRAW"]
    publish(config)
    instance = start(requester, title="x", amount=1)
    instance = instance_withdraw(instance_id=instance.pk, actor=requester, now=NOW)
    assert (instance.state, instance.status) == ("review", InstanceStatus.WITHDRAWN)
    assert instance.audit_events.last().event == "instance.withdrawn"
    assert instance.tasks.get().status == TaskStatus.CANCELLED


def test_the_withdrawn_state_is_found_by_its_outcome_before_its_name(requester):
    config = review_flow()
    config["states"]["stopped"] = {"type": "final", "meta": {"outcome": "withdrawn"}}
    config["states"]["changes"]["on"]["WITHDRAW"] = "stopped"
    config["states"]["review"]["on"]["DROP"] = "withdrawn"  # still reachable, not chosen
    publish(config)
    instance = start(requester, title="x", amount=1)
    instance = instance_withdraw(instance_id=instance.pk, actor=requester, now=NOW)
    assert (instance.state, instance.status) == ("stopped", InstanceStatus.WITHDRAWN)


def test_operator_cancels_with_a_reason(requester, operator, reviewer):
    publish(review_flow())
    instance = start(requester, title="x", amount=1)
    with pytest.raises(NotAllowed):
        instance_cancel(instance_id=instance.pk, actor=reviewer, reason="x", now=NOW)
    with pytest.raises(InvalidInput):
        instance_cancel(instance_id=instance.pk, actor=operator, reason="  ", now=NOW)
    instance = instance_cancel(instance_id=instance.pk, actor=operator, reason="duplicate", now=NOW)
    assert instance.status == InstanceStatus.CANCELLED
    assert instance.state == "review"
    assert instance.audit_events.last().data == {"reason": "duplicate", "outcome": "cancelled"}
    assert list(verify_instances([instance])) == []


def test_unknown_request_ids_are_refused(operator, requester):
    with pytest.raises(NotAllowed, match="no such request"):
        instance_cancel(instance_id=424242, actor=operator, reason="x", now=NOW)
    with pytest.raises(NotAllowed, match="no such request"):
        instance_withdraw(instance_id=424242, actor=requester, now=NOW)
    with pytest.raises(NotAllowed, match="no such request"):
        instance_send_event(instance_id=424242, event="X", actor=operator, now=NOW)
