"""Callback steps: a token handed out, reported on once through the API, heartbeats, timeouts
taken by the retry policy and then onError or the operator's review, and every late, repeated
or unknown report refused without changing anything."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from approvals.automation.runner import action_execute
from approvals.machine.validation import validate_config
from approvals.models import (
    AuditEvent,
    CallbackStatus,
    CallbackToken,
    FailedAction,
    InstanceStatus,
    OutboxMessage,
    StepAttempt,
    WorkflowInstance,
)
from approvals.services.audit import verify_instances
from approvals.services.callbacks import callback_report, waiting_callbacks
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import instance_send_event, instance_start
from tests.approvals.flows import NOW, publish
from tests.factories import GroupFactory

pytestmark = pytest.mark.django_db


def callback_flow(*, on_error: str | None = "failed", **invoke: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "src": "callback",
        "timeout": "PT1H",
        "retry": {"max_attempts": 2, "delay": "PT10S"},
        "onDone": "verified",
        **invoke,
    }
    if on_error:
        step["onError"] = on_error
    return {
        "id": "kyc",
        "title": "KYC",
        "initial": "checking",
        "states": {
            "checking": {"invoke": step, "on": {"ABANDON": "abandoned", "FAIL": "failed"}},
            "verified": {"type": "final"},
            "failed": {"type": "final", "meta": {"outcome": "rejected"}},
            "abandoned": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
    }


def start(requester, config=None) -> WorkflowInstance:
    publish(config or callback_flow())
    GroupFactory(name="operator")
    return instance_start(definition_key="kyc", context={"who": "ACME"}, actor=requester, now=NOW)


def message_of(instance) -> OutboxMessage:
    return OutboxMessage.objects.filter(instance=instance, topic="action.invoke").latest("pk")


def run(instance, at=None) -> str:
    message = message_of(instance)
    return action_execute(message_id=message.pk, now=at or message.available_at)


def opened(instance) -> dict[str, Any]:
    """The waiting callback as the API shows it."""
    (callback,) = waiting_callbacks(instance.pk)
    return callback


def test_an_attempt_opens_a_token_and_success_takes_on_done(requester):
    instance = start(requester)
    assert run(instance, NOW) == "waiting"
    callback = opened(instance)
    assert callback["state"] == "checking" and callback["attempt"] == 1
    assert len(callback["token"]) >= 22  # at least 128 bits, base64
    assert callback["success_url"].endswith(f"/api/v1/callbacks/{callback['token']}/success")
    row = CallbackToken.objects.get()
    assert row.token_hash == hashlib.sha256(callback["token"].encode()).hexdigest()
    assert callback["token"] not in str(
        CallbackToken.objects.values_list("nonce", "token_hash").get()
    )
    assert message_of(instance).available_at == NOW + timedelta(hours=1)
    waiting = OutboxMessage.objects.get(instance=instance, topic="callback.waiting")
    assert waiting.payload["token"] == callback["token"]
    assert AuditEvent.objects.filter(instance=instance, event="callback.opened").exists()

    report = callback_report(
        token=callback["token"],
        outcome="success",
        output={"score": 7},
        now=NOW + timedelta(minutes=5),
    )
    assert report.outcome == "done"
    instance.refresh_from_db()
    assert (instance.state, instance.status) == ("verified", InstanceStatus.COMPLETED)
    assert instance.context["checking"] == {"score": 7}
    assert list(verify_instances([instance])) == []

    # Single use: the same report again, or any other, changes nothing.
    for outcome in ("success", "failure", "heartbeat"):
        with pytest.raises(Conflict, match="already reported success"):
            callback_report(
                token=callback["token"], outcome=outcome, error="x", now=NOW + timedelta(minutes=6)
            )
    assert waiting_callbacks(instance.pk) == []


def test_a_reported_failure_is_retried_with_a_new_token_then_takes_on_error(requester):
    instance = start(requester)
    run(instance, NOW)
    first = opened(instance)
    report = callback_report(
        token=first["token"], outcome="failure", error="registry down", now=NOW
    )
    assert report.outcome == "retry"
    assert run(instance) == "waiting"  # after the backoff: attempt 2, a new token
    second = opened(instance)
    assert second["attempt"] == 2 and second["token"] != first["token"]
    with pytest.raises(Conflict, match="already reported failure"):
        callback_report(token=first["token"], outcome="success", now=NOW)
    callback_report(token=second["token"], outcome="failure", error="still down", now=NOW)
    instance.refresh_from_db()
    assert (instance.state, instance.status) == ("failed", InstanceStatus.REJECTED)
    assert list(
        StepAttempt.objects.filter(instance=instance)
        .order_by("number")
        .values_list("number", "error")
    ) == [(1, "registry down"), (2, "still down")]


def test_a_timeout_is_a_failed_attempt_and_the_last_one_goes_to_review(requester):
    instance = start(requester, callback_flow(on_error=None))
    run(instance, NOW)
    first = opened(instance)
    # Claimed before it is due (a duplicate dispatch): it waits on.
    assert run(instance, NOW + timedelta(minutes=30)) == "not due"
    assert message_of(instance).attempts == 1
    # An hour later without a report: attempt 1 timed out, retried after its backoff.
    assert run(instance, NOW + timedelta(hours=1)) == "retry"
    assert CallbackToken.objects.get(attempt=1).status == CallbackStatus.TIMED_OUT
    with pytest.raises(Conflict, match="already timed out"):
        callback_report(token=first["token"], outcome="success", now=NOW + timedelta(hours=2))
    assert run(instance) == "waiting"
    assert opened(instance)["attempt"] == 2
    message = message_of(instance)
    assert run(instance, message.available_at) == "failed"
    failure = FailedAction.objects.get(instance=instance)
    assert failure.attempts == 2
    assert failure.error == "no report from the outside system within PT1H"
    instance.refresh_from_db()
    assert instance.state == "checking" and instance.status == InstanceStatus.ACTIVE


def test_heartbeats_keep_it_waiting_and_a_missed_one_times_it_out(requester):
    instance = start(requester, callback_flow(heartbeat="PT5M"))
    run(instance, NOW)
    token = opened(instance)["token"]
    assert message_of(instance).available_at == NOW + timedelta(minutes=5)
    report = callback_report(token=token, outcome="heartbeat", now=NOW + timedelta(minutes=4))
    assert report.outcome == "waiting"
    assert report.callback.heartbeat_due == NOW + timedelta(minutes=9)
    assert message_of(instance).available_at == NOW + timedelta(minutes=9)
    with pytest.raises(Conflict, match="too late"):
        callback_report(token=token, outcome="success", now=NOW + timedelta(minutes=10))
    assert run(instance, NOW + timedelta(minutes=10)) == "retry"
    (attempt,) = StepAttempt.objects.filter(instance=instance)
    assert attempt.error == "no heartbeat from the outside system within PT5M"


def test_leaving_the_step_closes_its_token(requester, operator):
    instance = start(requester)
    run(instance, NOW)
    token = opened(instance)["token"]
    instance_send_event(instance_id=instance.pk, event="ABANDON", actor=operator, now=NOW)
    assert CallbackToken.objects.get().status == CallbackStatus.CLOSED
    with pytest.raises(Conflict, match="already closed"):
        callback_report(token=token, outcome="success", now=NOW)
    assert waiting_callbacks(instance.pk) == []


def test_bad_reports_are_refused_and_change_nothing(requester):
    instance = start(requester)
    run(instance, NOW)
    token = opened(instance)["token"]
    for bad in ("", "x" * 43, token[:-1]):
        with pytest.raises(NotAllowed, match="no such callback"):
            callback_report(token=bad, outcome="success", now=NOW)
    with pytest.raises(NotAllowed):
        callback_report(token=token, outcome="approve", now=NOW)
    with pytest.raises(InvalidInput, match="output must be a JSON object"):
        callback_report(token=token, outcome="success", output=[1, 2], now=NOW)
    with pytest.raises(InvalidInput, match="output.note"):
        callback_report(token=token, outcome="success", output={"note": "a\x00b"}, now=NOW)
    with pytest.raises(InvalidInput, match="says what went wrong"):
        callback_report(token=token, outcome="failure", error="  ", now=NOW)
    assert CallbackToken.objects.get().status == CallbackStatus.WAITING
    instance.refresh_from_db()
    assert instance.state == "checking"


@pytest.mark.parametrize(
    ("invoke", "says"),
    [
        ({"src": "callback", "onDone": "verified"}, "a callback step needs a timeout"),
        (
            {"src": "callback", "timeout": "soon", "onDone": "verified"},
            "(states.checking.invoke.timeout)",
        ),
        (
            {"src": "callback", "timeout": "PT5M", "heartbeat": "PT1H", "onDone": "verified"},
            "must be shorter than the timeout",
        ),
        ({"src": "notify", "timeout": "PT1H", "onDone": "verified"}, "only a callback step"),
    ],
)
def test_a_bad_callback_step_is_named_at_its_place(invoke, says):
    config = callback_flow()
    config["states"]["checking"]["invoke"] = invoke
    assert any(says in problem for problem in validate_config(config)), validate_config(config)


def test_the_request_page_says_it_waits_for_the_outside_system(requester, client):
    from approvals.selectors import steps_in_progress

    instance = start(requester)
    run(instance, NOW)
    (step,) = steps_in_progress(instance)
    assert step.summary.startswith("waiting for the outside system to report by ")
    assert step.summary.endswith("attempt 1 of 2")
    client.force_login(requester)
    page = client.get(f"/requests/{instance.pk}/").content.decode()
    assert "waiting for the outside system to report by" in page


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_report_racing_the_timeout_has_one_winner(requester):
    """Real threads on PostgreSQL: the report just before the deadline and the sweep's run
    just after it; whichever takes the row lock first wins, and the other changes nothing."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks")
    instance = start(requester)
    run(instance, NOW)
    token = opened(instance)["token"]
    due = NOW + timedelta(hours=1)
    results: dict[str, Any] = {}
    barrier = threading.Barrier(2)

    def report() -> None:
        barrier.wait()
        try:
            results["report"] = callback_report(
                token=token, outcome="success", now=due - timedelta(seconds=1)
            ).outcome
        except Conflict as exc:
            results["report"] = exc.message
        finally:
            connections.close_all()

    def timeout() -> None:
        barrier.wait()
        try:
            results["timeout"] = run(instance, due + timedelta(seconds=1))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=report), threading.Thread(target=timeout)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    instance.refresh_from_db()
    if results["report"] == "done":
        assert instance.state == "verified"
        assert results["timeout"] == "not due"
        assert CallbackToken.objects.get().status == CallbackStatus.SUCCEEDED
    else:
        assert "timed out" in results["report"], results
        assert results["timeout"] == "retry" and instance.state == "checking"
        assert CallbackToken.objects.get().status == CallbackStatus.TIMED_OUT
    assert list(verify_instances([instance])) == []
