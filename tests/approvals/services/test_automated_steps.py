"""Automated steps: run after commit, retried with backoff, onDone/onError, manual review."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from approvals.actions import ActionCall, PermanentError, register_action
from approvals.automation.runner import action_execute, backoff_seconds
from approvals.formatting import moment
from approvals.models import (
    AuditEvent,
    FailedAction,
    InstanceStatus,
    OutboxMessage,
    OutboxStatus,
    StepAttempt,
    Task,
    TaskKind,
    TaskStatus,
    WorkflowInstance,
)
from approvals.outbox.sweep import outbox_sweep
from approvals.services.audit import verify_instances
from approvals.services.automated_steps import (
    RETRYING,
    failed_action_cancel,
    failed_action_retry,
    failed_action_skip,
    skip_choices,
)
from approvals.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed
from approvals.services.instances import instance_send_event, instance_start
from approvals.services.task_work import describe_closed, task_decide
from tests.approvals.flows import NOW, publish
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db

# What the test actions do next: a list of exceptions to raise before succeeding.
FAILURES: list[Exception] = []
CALLS: list[ActionCall] = []


@register_action("test_flaky")
def flaky(call: ActionCall) -> Mapping[str, Any]:
    CALLS.append(call)
    if FAILURES:
        raise FAILURES.pop(0)
    return {"reference": f"REF-{call.instance_id}", "input": dict(call.input)}


@register_action("test_empty")
def empty(call: ActionCall) -> Mapping[str, Any]:
    return {"reference": ""}


@register_action("test_bad_output")
def bad_output(call: ActionCall) -> Any:
    return ["not", "a", "mapping"]


@pytest.fixture(autouse=True)
def _reset_actions():
    FAILURES.clear()
    CALLS.clear()


def step_flow(on_error: str | None = None, **extra: Any) -> dict[str, Any]:
    invoke: dict[str, Any] = {
        "src": "test_flaky",
        "input": {"order": 7},
        "retry": {"max_attempts": 3, "delay": "PT10S"},
        "onDone": {"target": "done", "guard": "event.output.reference != ''"},
    }
    if on_error:
        invoke["onError"] = on_error
    return {
        "id": "step",
        "title": "Step",
        "initial": "post",
        "states": {
            "post": {
                "invoke": invoke,
                "on": {"GIVE_UP": "abandoned", "FAIL": "failed"},
                **extra,
            },
            "done": {"type": "final"},
            "abandoned": {"type": "final", "meta": {"outcome": "cancelled"}},
            "failed": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def start(requester, config=None) -> WorkflowInstance:
    publish(config or step_flow())
    GroupFactory(name="operator")
    return instance_start(
        definition_key="step", context={"ordered": True}, actor=requester, now=NOW
    )


def message_of(instance) -> OutboxMessage:
    return OutboxMessage.objects.filter(instance=instance, topic="action.invoke").latest("pk")


def attempt(instance, at=None) -> str:
    """One attempt, at a time when the message is due (after its backoff)."""
    message = message_of(instance)
    return action_execute(message_id=message.pk, now=at or message.available_at)


def test_the_step_is_queued_after_commit(requester, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        instance = start(requester)
    message = message_of(instance)
    assert message.status == OutboxStatus.PENDING and message.payload["src"] == "test_flaky"
    assert callbacks, "nothing was scheduled after commit"


def test_success_stores_the_output_and_takes_on_done(requester):
    instance = start(requester)
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "done" and instance.status == InstanceStatus.COMPLETED
    assert instance.context["post"] == {"reference": f"REF-{instance.pk}", "input": {"order": 7}}
    (call,) = CALLS
    assert call.idempotency_key == f"{instance.pk}:1:post:test_flaky"
    assert call.context == {"ordered": True}
    message = message_of(instance)
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 1)
    done = AuditEvent.objects.get(instance=instance, event="action.completed")
    assert done.data["attempts"] == 1 and done.channel == "system"
    completed = OutboxMessage.objects.get(instance=instance, topic="action.completed")
    assert completed.payload == {"state": "post", "src": "test_flaky", "attempts": 1}
    # A duplicate delivery of the Celery message finds nothing to do.
    assert attempt(instance, at=NOW + timedelta(days=1)) == "not due"
    assert len(CALLS) == 1
    assert list(verify_instances([instance])) == []


def test_a_leased_step_is_not_run_twice(requester):
    instance = start(requester)
    message = message_of(instance)
    FAILURES.append(RuntimeError("boom"))
    # While one attempt holds the lease, a second delivery does nothing.
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=NOW + timedelta(minutes=5))
    assert action_execute(message_id=message.pk, now=NOW) == "not due"
    assert CALLS == []


def test_failures_are_retried_with_backoff_then_succeed(requester):
    instance = start(requester)
    FAILURES.extend([RuntimeError("timeout"), RuntimeError("timeout")])
    assert attempt(instance) == "retry"
    message = message_of(instance)
    assert message.attempts == 1 and message.last_error == "RuntimeError: timeout"
    # First retry after 5..10 s (equal jitter on 10 s).
    assert NOW + timedelta(seconds=5) <= message.available_at <= NOW + timedelta(seconds=10)
    assert attempt(instance) == "retry"
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "done"
    assert message_of(instance).attempts == 3


def test_backoff_doubles_with_jitter_and_is_capped():
    payload = {"delay_seconds": 10, "backoff": "exponential"}
    for attempt_number, base in [(1, 10), (2, 20), (3, 40)]:
        delays = {backoff_seconds(payload, attempt_number) for _ in range(20)}
        assert all(base / 2 <= d <= base for d in delays) and len(delays) > 1
    assert backoff_seconds(payload, 40) <= 3600
    assert 5 <= backoff_seconds({"delay_seconds": 10, "backoff": "fixed"}, 5) <= 10


def test_three_failures_land_in_manual_review_and_retry_from_there_succeeds(
    requester, operator, outsider
):
    instance = start(requester)
    FAILURES.extend([RuntimeError("502 Bad Gateway")] * 3)
    assert [attempt(instance) for _ in range(3)] == ["retry", "retry", "failed"]
    instance.refresh_from_db()
    assert instance.state == "post" and instance.is_active
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    assert review.is_live and review.label == "Automated step 'test_flaky' failed"
    assert list(review.candidate_groups.values_list("name", flat=True)) == ["operator"]
    failure = review.failed_action
    assert (failure.attempts, failure.error, failure.src) == (
        3,
        "RuntimeError: 502 Bad Gateway",
        "test_flaky",
    )
    assert message_of(instance).status == OutboxStatus.FAILED
    failed = OutboxMessage.objects.get(instance=instance, topic="action.failed").payload
    assert failed == {
        "state": "post",
        "src": "test_flaky",
        "attempts": 3,
        "error": "RuntimeError: 502 Bad Gateway",
        "task": review.pk,
    }
    # A review task is not decided like a decision task.
    with pytest.raises(Conflict, match="failed automated step"):
        task_decide(task_id=review.pk, event="GIVE_UP", actor=operator, now=NOW)
    # The outsider may not retry it; nothing changes.
    with pytest.raises(NotAllowed):
        failed_action_retry(task_id=review.pk, actor=outsider, now=NOW)
    assert Task.objects.get(pk=review.pk).is_live

    retry = failed_action_retry(task_id=review.pk, actor=operator, now=NOW, comment="ERP is up")
    assert (
        retry.pk != failure.message_id and retry.payload["step"] == failure.message.payload["step"]
    )
    review.refresh_from_db()
    failure.refresh_from_db()
    assert review.status == TaskStatus.DONE and failure.resolution == "retried"
    assert failure.resolved_by == operator
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "done"
    events = list(instance.audit_events.values_list("event", flat=True))
    assert events.count("action.failed") == 1 and "action.retried" in events
    assert list(verify_instances([instance])) == []
    # Handled once: a second retry is refused.
    with pytest.raises(AlreadyDecided, match="already handled"):
        failed_action_retry(task_id=review.pk, actor=operator, now=NOW)


def _fail_to_review(requester, config=None) -> Task:
    instance = start(requester, config)
    FAILURES.extend([RuntimeError("down")] * 3)
    for _ in range(3):
        attempt(instance)
    return Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)


def test_skip_takes_on_done_or_an_event_of_the_state(requester, operator):
    review = _fail_to_review(requester)
    assert skip_choices(review.failed_action) == ["onDone", "GIVE_UP", "FAIL"]
    with pytest.raises(InvalidInput) as exc:
        failed_action_skip(task_id=review.pk, event="APPROVE", actor=operator, now=NOW)
    assert "Choose one of: onDone, GIVE_UP, FAIL." in exc.value.field_errors["event"]
    # onDone's guard reads the output, which a skipped step does not have.
    with pytest.raises(Conflict):
        failed_action_skip(task_id=review.pk, event="onDone", actor=operator, now=NOW)
    assert Task.objects.get(pk=review.pk).is_live
    instance = failed_action_skip(task_id=review.pk, event="GIVE_UP", actor=operator, now=NOW)
    assert (instance.state, instance.status) == ("abandoned", "cancelled")
    review.refresh_from_db()
    assert review.status == TaskStatus.DONE and review.failed_action.resolution == "skipped"
    skipped = AuditEvent.objects.get(instance=instance, event="action.skipped")
    assert skipped.actor == operator and skipped.data["event"] == "GIVE_UP"


def test_cancel_from_manual_review_needs_a_reason(requester, operator):
    review = _fail_to_review(requester)
    with pytest.raises(InvalidInput):
        failed_action_cancel(task_id=review.pk, actor=operator, reason=" ", now=NOW)
    instance = failed_action_cancel(
        task_id=review.pk, actor=operator, reason="order withdrawn", now=NOW
    )
    assert instance.status == InstanceStatus.CANCELLED
    assert FailedAction.objects.get().resolution == "cancelled"


def test_review_services_refuse_ordinary_tasks_and_unknown_ids(requester, operator, reviewer):
    from tests.approvals.flows import review_flow

    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "x", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    with pytest.raises(InvalidInput, match="not a failed automated step"):
        failed_action_retry(task_id=task.pk, actor=operator, now=NOW)
    with pytest.raises(NotAllowed, match="no such task"):
        failed_action_retry(task_id=999_999, actor=operator, now=NOW)


def test_on_error_is_taken_instead_of_a_review(requester):
    instance = start(requester, step_flow(on_error="failed"))
    FAILURES.extend([ValueError("bad answer")] * 3)
    for _ in range(3):
        attempt(instance)
    instance.refresh_from_db()
    assert (instance.state, instance.status) == ("failed", "rejected")
    assert not Task.objects.filter(kind=TaskKind.ACTION_REVIEW).exists()
    move = AuditEvent.objects.get(instance=instance, event="transition", to_state="failed")
    assert move.data["data"] == {"error": "ValueError: bad answer"}
    failed = OutboxMessage.objects.get(instance=instance, topic="action.failed").payload
    assert failed["task"] is None and failed["attempts"] == 3


def test_leaving_the_state_drops_the_step_and_cancels_its_review(requester, operator):
    review = _fail_to_review(requester)
    instance_send_event(
        instance_id=review.instance_id, event="GIVE_UP", actor=operator, now=NOW, channel="api"
    )
    review.refresh_from_db()
    assert review.status == TaskStatus.CANCELLED
    # A step whose state was left before it ran is not run.
    other = instance_start(definition_key="step", context={}, actor=requester, now=NOW)
    instance_send_event(instance_id=other.pk, event="GIVE_UP", actor=operator, now=NOW)
    CALLS.clear()
    assert attempt(other) == "done"
    assert CALLS == [] and message_of(other).status == OutboxStatus.DELIVERED


def test_a_worker_that_died_mid_step_is_replaced_by_the_sweep(requester, settings):
    """The attempt claimed the message and never finished: once its lease ran out, the sweep
    sends it again and the step completes once."""
    settings.ACTION_LEASE_SECONDS = 60
    instance = start(requester)
    message = message_of(instance)
    # The dead worker's claim: attempt counted, lease set, nothing else.
    OutboxMessage.objects.filter(pk=message.pk).update(
        attempts=1, available_at=NOW + timedelta(seconds=60)
    )
    settings.OUTBOX_SWEEP_SECONDS = 30
    assert outbox_sweep(now=NOW + timedelta(seconds=30))["steps"] == 0
    # Due at +60, taken for lost a sweep interval later.
    assert outbox_sweep(now=NOW + timedelta(seconds=61))["steps"] == 0
    assert outbox_sweep(now=NOW + timedelta(seconds=91))["steps"] == 1
    assert action_execute(message_id=message.pk, now=NOW + timedelta(seconds=91)) == "done"
    instance.refresh_from_db()
    assert instance.state == "done" and message_of(instance).attempts == 2
    assert instance.audit_events.filter(event="transition", to_state="done").count() == 1


def test_entry_actions_run_and_are_audited(requester):
    config = step_flow()
    config["states"]["done"]["entry"] = ["notify"]
    instance = start(requester, config)
    attempt(instance)
    run = OutboxMessage.objects.get(instance=instance, topic="action.run")
    assert action_execute(message_id=run.pk, now=run.available_at) == "done"
    run.refresh_from_db()
    assert run.status == OutboxStatus.DELIVERED
    assert AuditEvent.objects.filter(instance=instance, event="action.completed").count() == 2


def test_admin_lists_failed_steps_and_handles_them(client, admin_user, requester, outsider):
    from django.test import Client
    from django.urls import reverse

    from tests.approvals.admin.test_instances import nested_forms

    review = _fail_to_review(requester)
    failure = review.failed_action
    client.force_login(admin_user)
    listing = client.get(reverse("admin:approvals_failedaction_changelist") + "?open=yes")
    assert listing.status_code == 200 and b"test_flaky" in listing.content
    page = client.get(reverse("admin:approvals_failedaction_change", args=[failure.pk]))
    assert b"RuntimeError: down" in page.content and b"Retry the step" in page.content
    assert b'value="GIVE_UP"' in page.content
    # Every attempt is listed, and the operations are forms of their own (not nested in the
    # change form, where a browser drops them).
    assert page.content.decode().split('id="attempts"')[1].count("<tr><td>") == 3
    assert nested_forms(page.content.decode()) == []

    # An outsider is sent to the admin login; nothing changes.
    other = Client()
    other.force_login(outsider)
    refused = other.post(reverse("admin:approvals_failedaction_retry", args=[failure.pk]))
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    assert Task.objects.get(pk=review.pk).is_live

    # A skip to an event the state does not have is refused with a message.
    bad = client.post(
        reverse("admin:approvals_failedaction_skip", args=[failure.pk]),
        {"event": "NOPE"},
        follow=True,
    )
    assert [str(m) for m in bad.context["messages"]] == ["choose how to continue"]
    assert Task.objects.get(pk=review.pk).is_live

    client.post(
        reverse("admin:approvals_failedaction_skip", args=[failure.pk]), {"event": "GIVE_UP"}
    )
    failure.refresh_from_db()
    assert failure.resolution == "skipped" and failure.resolved_by == admin_user
    assert failure.instance.status == "cancelled"
    again = client.post(
        reverse("admin:approvals_failedaction_retry", args=[failure.pk]), follow=True
    )
    assert any("already handled" in str(m) for m in again.context["messages"])
    assert (
        client.post(reverse("admin:approvals_failedaction_cancel", args=[4242])).status_code == 404
    )


def test_admin_breached_filter_lists_overdue_tasks(client, admin_user, requester):
    from django.urls import reverse

    from tests.approvals.flows import review_flow

    publish(review_flow(sla="PT1H"))
    instance_start(
        definition_key="review", context={"title": "late", "amount": 1}, actor=requester, now=NOW
    )
    client.force_login(admin_user)
    page = client.get(reverse("admin:approvals_task_changelist") + "?deadline=breached")
    assert page.status_code == 200 and page.context["cl"].result_count == 1


def test_on_done_guards_that_do_not_hold_go_to_manual_review(requester):
    """Success, but `event.output.reference != ''` is false: nobody is left waiting silently."""
    config = step_flow()
    config["states"]["post"]["invoke"]["src"] = "test_empty"
    instance = start(requester, config)
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "post" and instance.context["post"] == {"reference": ""}
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    assert "none of its onDone guards holds" in review.failed_action.error


def test_an_on_done_that_fails_part_way_is_undone_and_goes_to_manual_review(requester):
    """onDone enters a state whose `always` guard fails when evaluated: the moves it had made
    are rolled back, so the request is still in the step's state with the step's output, and
    one operator's review says what failed."""
    config = step_flow()
    config["states"]["post"]["invoke"]["onDone"]["target"] = "checked"
    config["states"]["checked"] = {
        "always": [{"target": "done", "guard": "1 / (ordered ? 0 : 1) > 0"}],
        "on": {"GIVE_UP": "abandoned"},
    }
    instance = start(requester, config)
    seq = instance.audit_seq
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "post" and instance.status == "active"
    assert instance.context["post"]["reference"] == f"REF-{instance.pk}"
    events = list(
        AuditEvent.objects.filter(instance=instance, seq__gt=seq).values_list("event", flat=True)
    )
    assert "transition" not in events and events.count("action.completed") == 1
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    assert review.state == "post" and review.is_live
    assert "onDone failed" in review.failed_action.error
    assert "division by zero" in review.failed_action.error
    assert StepAttempt.objects.filter(instance=instance).count() == 1
    assert message_of(instance).status == OutboxStatus.DELIVERED
    assert list(verify_instances([instance.pk])) == []


def test_an_on_error_that_fails_part_way_is_undone_and_goes_to_manual_review(requester):
    config = step_flow(on_error="checked")
    config["states"]["post"]["invoke"]["retry"] = {"max_attempts": 1}
    config["states"]["checked"] = {
        "always": [{"target": "failed", "guard": "1 / (ordered ? 0 : 1) > 0"}],
        "on": {"GIVE_UP": "abandoned"},
    }
    instance = start(requester, config)
    FAILURES.append(RuntimeError("ERP down"))
    assert attempt(instance) == "failed"
    instance.refresh_from_db()
    assert instance.state == "post" and instance.status == "active"
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    assert review.state == "post" and review.is_live
    error = review.failed_action.error
    assert "ERP down" in error and "onError failed too" in error and "division by zero" in error
    assert StepAttempt.objects.filter(instance=instance).count() == 1
    assert list(verify_instances([instance.pk])) == []


def test_an_action_returning_something_else_than_a_mapping_fails(requester):
    config = step_flow()
    config["states"]["post"]["invoke"]["src"] = "test_bad_output"
    config["states"]["post"]["invoke"]["retry"] = {"max_attempts": 1}
    instance = start(requester, config)
    assert attempt(instance) == "failed"
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    assert review.failed_action.error == "TypeError: the action returned list, not a mapping"


# ----- permanent failures, the attempt log, the operator's one-attempt retry


@register_action("test_refused")
def refused(call: ActionCall) -> Mapping[str, Any]:
    CALLS.append(call)
    raise PermanentError(
        "the ERP refused the order: HTTP 422 Unprocessable Entity",
        advice="fix the vendor number in the ERP, then retry the step",
    )


def test_a_permanent_failure_goes_to_manual_review_at_once(requester):
    """No backoff of identical attempts: the first says another cannot help."""
    config = step_flow()
    config["states"]["post"]["invoke"]["src"] = "test_refused"
    config["states"]["post"]["invoke"]["retry"] = {"max_attempts": 5, "delay": "PT1M"}
    instance = start(requester, config)
    assert attempt(instance) == "failed"
    assert len(CALLS) == 1
    review = Task.objects.get(instance=instance, kind=TaskKind.ACTION_REVIEW)
    failure = review.failed_action
    # In words, as the action said it (no exception class), with what to do.
    assert failure.error == "the ERP refused the order: HTTP 422 Unprocessable Entity"
    assert failure.advice == "fix the vendor number in the ERP, then retry the step"
    assert failure.attempts == 1
    assert message_of(instance).status == OutboxStatus.FAILED
    failed = AuditEvent.objects.get(instance=instance, event="action.failed")
    assert failed.data["advice"] == failure.advice
    (logged,) = StepAttempt.objects.filter(instance=instance)
    assert logged.permanent and logged.error == failure.error
    assert not OutboxMessage.objects.filter(instance=instance, topic=RETRYING).exists()


def test_a_webhook_without_its_secret_is_reviewed_at_once_with_what_to_do(requester, settings):
    settings.WEBHOOK_SECRET = ""
    config = step_flow()
    config["settings"] = {"webhook_url": "https://erp.example.com/hooks"}
    config["states"]["post"]["invoke"] = {
        "src": "webhook",
        "retry": {"max_attempts": 5},
        "onDone": "done",
    }
    instance = start(requester, config)
    assert attempt(instance) == "failed"
    failure = FailedAction.objects.get(instance=instance)
    assert "no WEBHOOK_SECRET is configured" in failure.error
    assert failure.advice.startswith("set WEBHOOK_SECRET and restart the worker")


def test_every_attempt_is_logged_with_its_time_and_error_and_progress_is_pushed(requester):
    instance = start(requester)
    FAILURES.extend([RuntimeError("timeout"), RuntimeError("502 Bad Gateway")])
    first_at = NOW + timedelta(seconds=1)
    assert attempt(instance, at=first_at) == "retry"
    message = message_of(instance)
    retrying = OutboxMessage.objects.get(instance=instance, topic=RETRYING)
    assert retrying.payload == {
        "state": "post",
        "src": "test_flaky",
        "attempts": 1,
        "max_attempts": 3,
        "next_at": message.available_at.isoformat(),
        "error": "RuntimeError: timeout",
    }
    assert attempt(instance) == "retry"
    assert attempt(instance) == "done"
    log = list(StepAttempt.objects.filter(instance=instance).values_list("number", "error"))
    assert log == [(1, "RuntimeError: timeout"), (2, "RuntimeError: 502 Bad Gateway"), (3, "")]
    assert StepAttempt.objects.filter(instance=instance).first().at == first_at
    assert {a.step for a in StepAttempt.objects.filter(instance=instance)} == {
        message.payload["step"]
    }


def test_a_step_whose_state_was_left_logs_no_attempt(requester, operator):
    instance = start(requester)
    instance_send_event(instance_id=instance.pk, event="GIVE_UP", actor=operator, now=NOW)
    assert attempt(instance) == "done"
    assert not StepAttempt.objects.filter(instance=instance).exists()


def test_retry_makes_one_attempt_and_its_failure_is_reviewed_at_once(requester, operator):
    review = _fail_to_review(requester)
    instance = review.instance
    failed_action_retry(task_id=review.pk, actor=operator, now=NOW)
    FAILURES.append(RuntimeError("still down"))
    # Not "retry": the operator asked for one attempt, and hears its outcome.
    assert attempt(instance) == "failed"
    second = FailedAction.objects.filter(instance=instance).latest("pk")
    assert second.task.is_live and second.attempts == 1 and second.error.endswith("still down")
    assert second.message.payload["retry_of"] == review.failed_action.pk
    assert StepAttempt.objects.filter(instance=instance).count() == 4
    # Retrying the new review is again one attempt, and this time it works.
    failed_action_retry(task_id=second.task_id, actor=operator, now=NOW)
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.state == "done"


def test_a_handled_review_says_who_handled_it_and_when(requester, operator):
    """A closed review has no Decision: describing it used to fail (500 on its page)."""
    when = moment(NOW)
    retried = _fail_to_review(requester)
    failed_action_retry(task_id=retried.pk, actor=operator, now=NOW)
    retried.refresh_from_db()
    assert describe_closed(retried) == f"retried by Opal Operator at {when}"
    with pytest.raises(AlreadyDecided, match="already handled"):
        failed_action_retry(task_id=retried.pk, actor=operator, now=NOW)

    skipped = _fail_to_review(requester)
    failed_action_skip(task_id=skipped.pk, event="GIVE_UP", actor=operator, now=NOW)
    skipped.refresh_from_db()
    assert describe_closed(skipped) == f"skipped by Opal Operator at {when}"

    cancelled = _fail_to_review(requester)
    failed_action_cancel(task_id=cancelled.pk, actor=operator, reason="gone", now=NOW)
    cancelled.refresh_from_db()
    assert describe_closed(cancelled) == f"cancelled with the request by Opal Operator at {when}"

    # Left by another way: no resolution, the request moved on.
    left = _fail_to_review(requester)
    instance_send_event(instance_id=left.instance_id, event="FAIL", actor=operator, now=NOW)
    left.refresh_from_db()
    assert describe_closed(left) == "this task is cancelled; the request has moved on"
