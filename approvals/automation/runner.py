"""Automated steps: the outbox's own deliveries, to the actions registered in code.

The engine writes an `action.invoke` (a state's `invoke`) or `action.run` (`entry`/`exit`)
outbox message in the transaction of the move. After commit the Celery task `run_action`
(acks_late, reject_on_worker_lost) calls `action_execute` with the message id:

1. *claim* the message (`STEPS.claim`): the attempt is counted and the row leased for
   ACTION_LEASE_SECONDS, so a duplicate delivery of the Celery message does nothing while the
   first runs;
2. run the action outside any transaction (it may call slow outside services), with one
   idempotency key per step visit, the same for every attempt;
3. record the outcome on the locked instance (`services.automated_steps.step_record`), which
   re-checks that the message is still pending and the step still current: `onDone`, or
   after the last attempt `onError` or a manual-review task; otherwise the message goes back
   to the queue, due after its backoff. An action that raises `PermanentError` (a setting is
   missing, the target refused the request) is not retried: its one attempt is the last.

A worker killed mid-step leaves the message pending with an expired lease; the outbox sweep
sends it again, so the step runs again and the transition still happens once, because step 3
only moves a request whose message is still pending.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from approvals import logcontext, tracing
from approvals.actions import ActionCall, PermanentError, get_action
from approvals.machine.config import CALLBACK_SRC
from approvals.models import OutboxMessage, OutboxStatus
from approvals.outbox import retry
from approvals.outbox.dispatch import queue, queue_after_commit
from approvals.outbox.subscribers import Batch, subscribe
from approvals.services.automated_steps import (
    ACTION_TOPICS,
    INVOKE,
    RETRY,
    RUN_ACTION,
    backoff_seconds,
    step_is_current,
    step_record,
)
from approvals.services.callbacks import callback_abandon, callback_wait, waiting_callbacks
from approvals.services.definitions import statechart_for

logger = logging.getLogger(__name__)

# What an attempt of a callback step comes to while its token waits for the report.
WAITING = "waiting"

MAX_ERROR = 2000

STEPS = retry.register(
    retry.RetryQueue(
        name="steps",
        model=OutboxMessage,
        task=RUN_ACTION,
        live=Q(status=OutboxStatus.PENDING, topic__in=ACTION_TOPICS),
        due_field="available_at",
        lease=lambda: float(settings.ACTION_LEASE_SECONDS),
        # A message due less than a sweep ago is normally being sent right now (after its
        # commit, or by its retry countdown); only later is it taken for lost.
        sweep_grace=lambda: float(settings.OUTBOX_SWEEP_SECONDS),
    )
)


@subscribe(*ACTION_TOPICS)
def run_after_commit(batch: Batch) -> None:
    queue_after_commit(RUN_ACTION, [(message.pk,) for message in batch])


def action_execute(*, message_id: int, now: datetime | None = None) -> str:
    """One attempt of the step behind an action message (what the Celery task calls).

    Returns what happened: "not due" (done already, leased by another worker, or waiting for
    its retry), "done", "retry", "failed"."""
    # Outcomes are recorded at the time they happen (an action may take a while), unless the
    # caller fixes the clock.
    clock = (lambda: now) if now is not None else timezone.now
    if not STEPS.claim(message_id, now=clock()):
        return "not due"
    message = OutboxMessage.objects.select_related("instance__definition").get(pk=message_id)
    instance = message.instance
    assert instance is not None
    logcontext.bind_instance(instance.pk)
    with tracing.delivery_span(
        "signoff.action_execute",
        message.trace_context,
        workflow=instance.definition.key,
        instance=instance.pk,
        action=message.payload.get("src") or message.payload.get("action"),
        state=message.payload.get("state"),
        attempt=message.attempts,
    ):
        return _attempt(message_id, message, instance, clock)


def _attempt(
    message_id: int, message: OutboxMessage, instance: Any, clock: Callable[[], datetime]
) -> str:
    payload = message.payload
    name = payload.get("src") or payload.get("action")
    callback = None
    if message.topic == INVOKE and not step_is_current(instance, payload):
        return step_record(message_id, output=None, error=None, now=clock())
    if message.topic == INVOKE and name == CALLBACK_SRC:
        # A callback step's attempt opens a token and waits; a run once it timed out is
        # that attempt's failure. With an address, the token is POSTed as `webhook` does.
        wait = callback_wait(message_id=message_id, now=clock())
        if wait.error:
            return _failed(message_id, payload, wait.error, clock, message.attempts - 1)
        if wait.opened is None or not wait.post_to:
            return WAITING if wait.opened else "not due"
        callback, name = wait.opened, "webhook"
        payload = {**payload, "input": {"url": wait.post_to}}
    call = ActionCall(
        instance_id=instance.pk,
        definition_key=instance.definition.key,
        state=payload["state"],
        context=instance.context,
        input=payload.get("input") or {},
        settings=statechart_for(instance.definition).settings,
        idempotency_key=payload.get("step") or message.idempotency_key,
        sensitive=instance.sensitive_names(),
        callbacks=tuple(waiting_callbacks(instance.pk)),
    )
    try:
        output = _json_output(get_action(name)(call))
    except PermanentError as exc:  # another attempt cannot help: told at once
        logger.info("action %s of instance %s failed for good: %s", name, instance.pk, exc)
        if callback is not None:
            callback_abandon(callback_id=callback.pk)
        return step_record(
            message_id,
            output=None,
            error=str(exc)[:MAX_ERROR],
            now=clock(),
            permanent=True,
            advice=exc.advice,
        )
    except Exception as exc:  # an action's failure is data: retried, then reviewed
        logger.info("action %s of instance %s failed: %s", name, instance.pk, exc)
        if callback is not None:
            callback_abandon(callback_id=callback.pk)
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
        return _failed(message_id, payload, error, clock, message.attempts)
    if callback is not None:
        return WAITING  # the token went out; the report or the timeout comes next
    return step_record(message_id, output=output, error=None, now=clock())


def _failed(
    message_id: int,
    payload: Mapping[str, Any],
    error: str,
    clock: Callable[[], datetime],
    attempt: int,
) -> str:
    """A failed attempt: recorded, and sent again after its backoff while attempts are left."""
    delay = backoff_seconds(payload, attempt)
    outcome = step_record(message_id, output=None, error=error, now=clock(), retry_delay=delay)
    if outcome == RETRY:
        queue(RUN_ACTION, [(message_id,)], countdown=delay)
    return outcome


def _json_output(output: Any) -> dict[str, Any]:
    if output is None:
        return {}
    if not isinstance(output, Mapping):
        raise TypeError(f"the action returned {type(output).__name__}, not a mapping")
    return json.loads(json.dumps(dict(output)))  # TypeError/ValueError if not JSON
