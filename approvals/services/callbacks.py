"""Callback steps: a state's `invoke: {src: callback, timeout: PT1H, heartbeat: PT5M}` hands an
outside system a task token and waits for it to report back.

The step is an automated step like any other (its `action.invoke` outbox message, the one
retry implementation, onDone / onError / the operator's review), whose attempt is a wait:

- an attempt (the runner's claim of the message) *opens* a token (`CallbackToken`, at least
  256 bits, only its SHA-256 stored), audited `callback.opened` and told through the outbox
  (`callback.waiting`, which outgoing webhooks receive; the runner also POSTs it when the step
  has an address, as the `webhook` action does), and the message is due again when the
  attempt times out: its timeout, or a missed heartbeat;
- the outside system reports `POST /api/v1/callbacks/<token>/success|failure|heartbeat`
  (`callback_report`): success is the step's success (its output goes into the context, then
  onDone), failure is a failed attempt (retried by the step's `retry`, then onError or the
  review), a heartbeat moves the missed-heartbeat time on;
- a message that falls due with its token still waiting (`callback_wait`) is a timed-out
  attempt: the same as a reported failure.

A token is single-use and bound to its step's visit and attempt: once reported, timed out, or
once the request left the step, every report with it gets a Conflict (409) and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.crypto import salted_hmac

from approvals.machine.durations import format_duration
from approvals.models import (
    CallbackStatus,
    CallbackToken,
    Channel,
    OutboxMessage,
    OutboxStatus,
    WorkflowInstance,
)
from approvals.outbox.dispatch import queue_after_commit
from approvals.services.automated_steps import (
    RETRY,
    RUN_ACTION,
    backoff_seconds,
    step_is_current,
    step_record,
)
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.locking import lock_instance
from approvals.storable import json_problem

WAITING_TOPIC = "callback.waiting"
OUTCOMES = ("success", "failure", "heartbeat")
MAX_ERROR = 2000


def _token(nonce: str) -> str:
    digest = salted_hmac("approvals.callback-token", nonce, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def callback_urls(token: str) -> dict[str, str]:
    """Where the outside system reports, absolute."""
    site = settings.SITE_URL.rstrip("/")
    return {
        f"{outcome}_url": site + reverse("api:callback", args=[token, outcome])
        for outcome in OUTCOMES
    }


def describe(callback: CallbackToken) -> dict[str, Any]:
    """A waiting callback as the API and the webhooks show it (the token included)."""
    token = _token(callback.nonce)
    return {
        "state": callback.state,
        "attempt": callback.attempt,
        "token": token,
        "timeout_at": callback.timeout_at.isoformat(),
        "heartbeat_due": callback.heartbeat_due.isoformat() if callback.heartbeat_due else None,
        **callback_urls(token),
    }


def waiting_callbacks(instance_id: int) -> list[dict[str, Any]]:
    rows = CallbackToken.objects.filter(instance_id=instance_id, status=CallbackStatus.WAITING)
    return [describe(row) for row in rows.order_by("pk")]


# ----- the attempt (the runner, once it claimed the step's message)


@dataclass(frozen=True)
class Wait:
    """What an attempt of a callback step came to: a token opened (`opened`, with the
    address to POST it to, if the step has one), or the attempt before it timed out (`error`),
    or neither (nothing to do: the message was claimed before it was due, or is over)."""

    opened: CallbackToken | None = None
    post_to: str = ""
    error: str = ""


def callback_wait(*, message_id: int, now: datetime) -> Wait:
    """Open this attempt's token, or find that the last one timed out."""
    with transaction.atomic():
        instance_id = OutboxMessage.objects.values_list("instance_id", flat=True).get(pk=message_id)
        instance = lock_instance(instance_id=instance_id)
        message = OutboxMessage.objects.get(pk=message_id)
        if message.status != OutboxStatus.PENDING:
            return Wait()
        waiting = CallbackToken.objects.filter(
            message=message, status=CallbackStatus.WAITING
        ).first()
        if waiting is not None:
            # The claim counted an attempt; this run only looks at the one that is waiting.
            message.attempts = F("attempts") - 1
            if now < waiting.due_at:
                message.available_at = waiting.due_at
                message.save(update_fields=["attempts", "available_at"])
                return Wait()
            message.save(update_fields=["attempts"])
            waiting.status = CallbackStatus.TIMED_OUT
            waiting.save(update_fields=["status"])
            return Wait(error=_timed_out(waiting, message.payload))
        if not step_is_current(instance, message.payload):
            return Wait()
        return _open(instance, message, now)


def _timed_out(callback: CallbackToken, payload: dict[str, Any]) -> str:
    if callback.heartbeat_due and callback.heartbeat_due < callback.timeout_at:
        wait = timedelta(seconds=float(payload["heartbeat_seconds"]))
        return f"no heartbeat from the outside system within {format_duration(wait)}"
    wait = timedelta(seconds=float(payload["timeout_seconds"]))
    return f"no report from the outside system within {format_duration(wait)}"


def _open(instance: WorkflowInstance, message: OutboxMessage, now: datetime) -> Wait:
    payload = message.payload
    heartbeat = payload.get("heartbeat_seconds")
    nonce = secrets.token_hex(16)
    callback = CallbackToken.objects.create(
        instance=instance,
        message=message,
        state=payload["state"],
        visit=int(payload.get("visit") or 0),
        attempt=message.attempts,
        nonce=nonce,
        token_hash=_hash(_token(nonce)),
        opened_at=now,
        timeout_at=now + timedelta(seconds=float(payload["timeout_seconds"])),
        heartbeat_due=now + timedelta(seconds=float(heartbeat)) if heartbeat else None,
    )
    message.available_at = callback.due_at
    message.save(update_fields=["available_at"])
    chart = statechart_for(instance.definition)
    run = Run(instance, chart, actor=None, channel=Channel.SYSTEM, now=now)
    times = {
        "attempt": callback.attempt,
        "timeout_at": callback.timeout_at.isoformat(),
        **({"heartbeat_due": callback.heartbeat_due.isoformat()} if heartbeat else {}),
    }
    run.record("callback.opened", to_state=callback.state, data=times)
    run.emit(WAITING_TOPIC, describe(callback), key=f"callback:{message.pk}:{callback.attempt}")
    run.commit()
    url = (payload.get("input") or {}).get("url") or chart.settings.get("webhook_url") or ""
    return Wait(opened=callback, post_to=str(url))


def callback_abandon(*, callback_id: int) -> None:
    """The token could not be handed over (its POST failed): nobody can report with it."""
    CallbackToken.objects.filter(pk=callback_id, status=CallbackStatus.WAITING).update(
        status=CallbackStatus.CLOSED
    )


# ----- the report (the outside system)


@dataclass(frozen=True)
class Report:
    callback: CallbackToken
    outcome: str  # what the step came to: step_record's answer, or "waiting" after a heartbeat


def callback_report(
    *, token: str, outcome: str, output: Any = None, error: Any = None, now: datetime
) -> Report:
    """The outside system's report with its token; see the module's docstring."""
    if outcome not in OUTCOMES:
        raise NotAllowed("no such callback")
    found = CallbackToken.objects.filter(token_hash=_hash(str(token))).values_list(
        "pk", "instance_id"
    )
    if not found:
        raise NotAllowed("no such callback")
    (callback_id, instance_id) = found[0]
    if outcome == "success":
        output = _output(output)
    elif outcome == "failure":
        error = _error(error)
    with transaction.atomic():
        instance = lock_instance(instance_id=instance_id)
        callback = CallbackToken.objects.select_related("message").get(pk=callback_id)
        message = callback.message
        if callback.status != CallbackStatus.WAITING:
            raise Conflict(
                f"this callback was already {callback.get_status_display().lower()}; "
                "a token reports once",
                current_state=instance.state,
            )
        if now >= callback.due_at:
            raise Conflict(
                f"too late: the step stopped waiting for this report at "
                f"{callback.due_at.isoformat()}",
                current_state=instance.state,
            )
        if message.status != OutboxStatus.PENDING or not step_is_current(instance, message.payload):
            raise Conflict(
                "the request is no longer at this step; the report changes nothing",
                current_state=instance.state,
            )
        if outcome == "heartbeat":
            return Report(_heartbeat(callback, message, now), "waiting")
        callback.status = (
            CallbackStatus.SUCCEEDED if outcome == "success" else CallbackStatus.FAILED
        )
        callback.reported_at = now
        callback.save(update_fields=["status", "reported_at"])
        if outcome == "success":
            result = step_record(message.pk, output=output, error=None, now=now)
        else:
            result = step_record(
                message.pk,
                output=None,
                error=error,
                now=now,
                retry_delay=backoff_seconds(message.payload, message.attempts),
            )
    if result == RETRY:
        queue_after_commit(
            RUN_ACTION,
            [(message.pk,)],
            countdown=backoff_seconds(message.payload, message.attempts),
        )
    return Report(callback, result)


def _heartbeat(callback: CallbackToken, message: OutboxMessage, now: datetime) -> CallbackToken:
    seconds = message.payload.get("heartbeat_seconds")
    if seconds:
        callback.heartbeat_due = now + timedelta(seconds=float(seconds))
        callback.save(update_fields=["heartbeat_due"])
        message.available_at = callback.due_at
        message.save(update_fields=["available_at"])
    return callback


def _output(output: Any) -> dict[str, Any]:
    if output is None:
        return {}
    if not isinstance(output, dict):
        raise InvalidInput(
            "output must be a JSON object", {"output": ["Expected an object of named values."]}
        )
    problem = json_problem(output)
    if problem:
        where, message = problem
        place = f"output.{where}" if where else "output"
        raise InvalidInput(f"{place}: {message}", {"output": [f"{place}: {message}"]})
    return output


def _error(error: Any) -> str:
    if not isinstance(error, str) or not error.strip():
        raise InvalidInput(
            "a failure says what went wrong", {"error": ["Required: text saying what failed."]}
        )
    return error.strip()[:MAX_ERROR]
