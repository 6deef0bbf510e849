"""Automated steps, their writes: the outcome of an attempt on the locked instance, and the
operator's manual review when a step keeps failing (retry, skip, cancel).

The attempts themselves (claim, run the registered action outside any transaction, back off)
are `approvals.automation.runner`; this module only moves requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from approvals import tracing
from approvals.machine.statechart import State
from approvals.models import (
    AuditEvent,
    Channel,
    FailedAction,
    FailedActionResolution,
    InstanceStatus,
    OutboxMessage,
    OutboxStatus,
    StepAttempt,
    Task,
    TaskKind,
    TaskStatus,
    WorkflowInstance,
)
from approvals.outbox import retry
from approvals.permissions import can_operate, task_refusal
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import AlreadyDecided, Conflict, InvalidInput, NotAllowed
from approvals.services.locking import lock_instance, lock_task

RUN_ACTION = "approvals.tasks.run_action"
INVOKE = "action.invoke"
RUN = "action.run"
ACTION_TOPICS = (INVOKE, RUN)
# A failed attempt with attempts left: live pages show the step's progress.
RETRYING = "action.retrying"
# What an attempt came to (step_record).
NOT_DUE, DONE, RETRY, FAILED = "not due", "done", "retry", "failed"
# entry/exit actions have no retry policy of their own in the format.
DEFAULT_ATTEMPTS = 3
# The skip choice that continues as if the step had succeeded (its invoke.onDone).
SKIP_AS_DONE = "onDone"
# entry/exit actions have no retry policy of their own in the format.
DEFAULT_DELAY_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 3600.0


def step_backoff(payload: Mapping[str, Any]) -> retry.Backoff:
    """The definition's `retry` policy: fixed, or doubling from `retry.delay`, with jitter,
    capped at an hour."""
    exponential = payload.get("backoff", "exponential") == "exponential"
    return retry.Backoff(
        base=float(payload.get("delay_seconds") or DEFAULT_DELAY_SECONDS),
        factor=2.0 if exponential else 1.0,
        cap=MAX_BACKOFF_SECONDS,
        jitter=True,
    )


def backoff_seconds(payload: Mapping[str, Any], attempt: int) -> float:
    return step_backoff(payload).seconds(attempt)


def step_is_current(instance: WorkflowInstance, payload: Mapping[str, Any]) -> bool:
    """The request is still in the step's state, in the same visit of it: nothing entered that
    state (or, for a state in a region, the parallel state around it) after the visit began."""
    if instance.status != InstanceStatus.ACTIVE:
        return False
    state = payload["state"]
    if (
        instance.state != state
        and not instance.branches.filter(closed_at__isnull=True, state=state).exists()
    ):
        return False
    entered = (
        AuditEvent.objects.filter(
            instance=instance,
            to_state__in={state, instance.state},
            event__in=("transition", "instance.started"),
        )
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return entered is None or entered <= int(payload.get("visit") or 0)


@tracing.service_span("signoff.step_record")
def step_record(
    message_id: int,
    *,
    output: dict[str, Any] | None,
    error: str | None,
    now: datetime,
    permanent: bool = False,
    advice: str = "",
    retry_delay: float = 0.0,
) -> str:
    """Record one attempt's outcome. Returns DONE, FAILED, RETRY (attempts are left: the
    message is due again `retry_delay` seconds from now, and the caller queues it) or NOT_DUE
    (someone else finished it).

    A `permanent` failure (the action said another attempt cannot help) is the last attempt
    whatever the retry policy; `advice` says what to do and goes with the error."""
    outcome = dict(
        output=output,
        error=error,
        now=now,
        permanent=permanent,
        advice=advice,
        retry_delay=retry_delay,
    )
    try:
        return _step_record(message_id, **outcome)
    except _HandlerFailed as failed:
        # Its moves went with the rolled-back transaction: record the attempt again, this
        # time handing the step, still in its state, straight to an operator.
        return _step_record(message_id, **outcome, handler_problem=failed.problem)


class _HandlerFailed(Exception):
    """A step's onDone or onError failed part way (a guard or assign further along raised)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _step_record(
    message_id: int,
    *,
    output: dict[str, Any] | None,
    error: str | None,
    now: datetime,
    permanent: bool,
    advice: str,
    retry_delay: float,
    handler_problem: str | None = None,
) -> str:
    with transaction.atomic():
        instance_id = OutboxMessage.objects.values_list("instance_id", flat=True).get(pk=message_id)
        instance = lock_instance(instance_id=instance_id)
        message = OutboxMessage.objects.get(pk=message_id)
        if message.status != OutboxStatus.PENDING:
            return NOT_DUE
        run = Run(
            instance,
            statechart_for(instance.definition),
            actor=None,
            channel=Channel.SYSTEM,
            now=now,
        )
        payload = message.payload
        current = message.topic == RUN or step_is_current(instance, payload)
        if current:
            # Only attempts that ran: a step whose state was left is closed without one.
            StepAttempt.objects.create(
                message=message,
                instance=instance,
                step=step_key(message),
                number=message.attempts,
                at=now,
                error=error or "",
                permanent=permanent,
            )
        if error is None:
            _deliver(message, now)
            if current:
                _complete(run, message, output or {}, handler_problem)
                run.commit()
            return DONE
        max_attempts = int(payload.get("max_attempts") or DEFAULT_ATTEMPTS)
        if current and not permanent and message.attempts < max_attempts:
            # What STEPS.retry_later writes, here in the transaction of the attempt, so that
            # a page reading "next at" and the live event that makes it read agree.
            message.available_at = now + timedelta(seconds=retry_delay)
            message.last_error = error
            message.save(update_fields=["available_at", "last_error"])
            run.emit(
                RETRYING,
                {
                    "state": payload["state"],
                    "src": payload.get("src") or payload.get("action"),
                    "attempts": message.attempts,
                    "max_attempts": max_attempts,
                    "next_at": message.available_at.isoformat(),
                    "error": error,
                },
                key=f"retrying:{message.pk}:{message.attempts}",
            )
            run.commit()
            return RETRY
        message.status = OutboxStatus.FAILED
        message.last_error = error
        message.save(update_fields=["status", "last_error"])
        if current:
            _fail(run, message, error, advice, handler_problem)
            run.commit()
        return FAILED


def step_key(message: OutboxMessage) -> str:
    """The step visit an action message belongs to: the same for its retries (an `invoke`
    carries it); an entry/exit action is its own."""
    return str(message.payload.get("step") or message.idempotency_key)


def _deliver(message: OutboxMessage, now: datetime) -> None:
    message.status = OutboxStatus.DELIVERED
    message.delivered_at = now
    message.last_error = ""
    message.save(update_fields=["status", "delivered_at", "last_error"])


def _complete(
    run: Run, message: OutboxMessage, output: dict[str, Any], handler_problem: str | None
) -> None:
    """The step's success: its output in the context, then its onDone, unless that already
    failed once (`handler_problem`), in which case an operator reviews the step."""
    payload = message.payload
    name = payload.get("src") or payload.get("action")
    summary = {"state": payload["state"], "src": name, "attempts": message.attempts}
    run.record("action.completed", to_state=payload["state"], data={**summary, "output": output})
    run.emit("action.completed", summary, key=f"action-done:{message.pk}")
    if message.topic == INVOKE:
        state = run.chart.state(payload["state"])
        context = dict(run.instance.context)
        context[state.name] = output
        run.set_context(context)
        if not state.invoke_done:
            return  # the state has other ways out (on, after...)
        problem = handler_problem
        if problem is None:
            try:
                moved = run.take_first(state.invoke_done, {"output": output})
            except Conflict as exc:
                raise _HandlerFailed(
                    f"the step succeeded but its onDone failed: {exc.message}"
                ) from exc
            if moved is not None:
                return
            problem = "the step succeeded but none of its onDone guards holds"
        # Neither moving on nor failing silently: an operator decides.
        review = open_step_review(run, message, state, problem)
        run.emit(
            "action.failed",
            {**summary, "error": problem, "task": review.pk},
            key=f"action-failed:{message.pk}",
        )


def _fail(
    run: Run, message: OutboxMessage, error: str, advice: str, handler_problem: str | None
) -> None:
    """The step's last attempt failed: its onError, unless that already failed once
    (`handler_problem`), else an operator reviews the step."""
    payload = message.payload
    name = payload.get("src") or payload.get("action")
    summary = {"state": payload["state"], "src": name, "attempts": message.attempts}
    told = {"error": error, **({"advice": advice} if advice else {})}
    run.record("action.failed", to_state=payload["state"], data={**summary, **told})
    review: Task | None = None
    if message.topic == INVOKE:
        state = run.chart.state(payload["state"])
        moved = None
        if handler_problem is None:
            try:
                moved = run.take_first(state.invoke_error, {"error": error})
            except Conflict as exc:
                raise _HandlerFailed(f"{error}; its onError failed too: {exc.message}") from exc
        else:
            error = handler_problem
        if moved is None:
            review = open_step_review(run, message, state, error, advice)
    run.emit(
        "action.failed",
        {**summary, **told, "task": review.pk if review else None},
        key=f"action-failed:{message.pk}",
    )


def open_step_review(
    run: Run, message: OutboxMessage, state: State, error: str, advice: str = ""
) -> Task:
    """The operator's manual-review task, in the step's state (leaving the state cancels it)."""
    role, _ = Group.objects.get_or_create(name=settings.ACTION_REVIEW_ROLE)
    payload = message.payload
    branch = run.branches.get(state.parent) if state.parent else None
    task = run.new_task(
        branch=branch,
        state=state.path,
        visit=int(payload.get("visit") or 0),
        label=f"Automated step '{payload['src']}' failed",
        kind=TaskKind.ACTION_REVIEW,
        forbid_requester=True,
        created_at=run.now,
    )
    task.save(force_insert=True)
    task.candidate_groups.set([role])
    FailedAction.objects.create(
        instance=run.instance,
        task=task,
        message=message,
        state=state.path,
        visit=task.visit,
        src=payload["src"],
        attempts=message.attempts,
        error=error,
        advice=advice[:500],
        failed_at=run.now,
    )
    run.record(
        "task.created",
        to_state=state.path,
        task=task,
        data={"roles": [role.name], "assignee": None, "due_at": None, "review_of": payload["src"]},
    )
    run.emit(
        "task.created",
        {"task": task.pk, "state": state.path, "roles": [role.name], "assignee": None},
        key=f"task:{task.pk}",
    )
    return task


# ----- the operator's manual review: retry, skip, cancel


def _locked_review(
    task_id: int, *, actor: Any, channel: str, now: datetime
) -> tuple[WorkflowInstance, Task, FailedAction, Run]:
    instance, task = lock_task(task_id=task_id, actor=actor)
    failure = FailedAction.objects.filter(task=task).select_related("message").first()
    if failure is None or task.kind != TaskKind.ACTION_REVIEW:
        raise InvalidInput("this task is not a failed automated step", {"task": ["Not a review."]})
    if not task.is_live:
        resolved = failure.get_resolution_display().lower() if failure.resolution else "closed"
        raise AlreadyDecided(
            f"this failed step was already handled ({resolved})", current_state=task.state
        )
    refusal = task_refusal(actor, task, instance)
    if refusal and not can_operate(actor, "send_event"):
        raise NotAllowed(refusal)
    run = Run(instance, statechart_for(instance.definition), actor=actor, channel=channel, now=now)
    run.touch(task)
    return instance, task, failure, run


def _resolve(
    run: Run, task: Task, failure: FailedAction, resolution: str, actor: Any, data: dict[str, Any]
) -> None:
    task.close(TaskStatus.DONE)
    task.assignee = task.assignee or actor
    task.closed_at = run.now
    task.save(update_fields=["status", "assignee", "closed_at"])
    failure.resolution = resolution
    failure.resolved_at = run.now
    failure.resolved_by = actor
    failure.save(update_fields=["resolution", "resolved_at", "resolved_by"])
    # The state's other live tasks stay; this one is settled, so leaving needs no UPDATE for it.
    run.record(
        f"action.{resolution}", task=task, to_state=task.state, data={"src": failure.src, **data}
    )
    run.emit(
        "task.decided",
        {"task": task.pk, "decision": resolution, "actor": actor.pk},
        key=f"decided:{task.pk}",
    )


def skip_choices(failure: FailedAction) -> list[str]:
    """What an operator may continue with instead of the failed step: its onDone (as if it had
    succeeded, with no output) when it has one, then the events its state accepts."""
    chart = statechart_for(failure.instance.definition)
    state = chart.state(failure.state)
    return ([SKIP_AS_DONE] if state.invoke_done else []) + list(state.on)


@transaction.atomic
def failed_action_retry(
    *, task_id: int, actor: Any, now: datetime, comment: str = "", channel: str = Channel.WEB
) -> OutboxMessage:
    """Run the failed step once more (same idempotency key): one attempt, whose outcome is
    the answer (onDone, or onError or a new review at once), not another round of the retry
    policy. Returns the new action.invoke message, which is queued after commit."""
    _, task, failure, run = _locked_review(task_id, actor=actor, channel=channel, now=now)
    _resolve(run, task, failure, FailedActionResolution.RETRIED, actor, {"comment": comment})
    payload = {**failure.message.payload, "max_attempts": 1, "retry_of": failure.pk}
    # The step's own kind of message: an action's invoke, or a sub-workflow's start (a new child).
    run.emit(failure.message.topic, payload, key=f"retry:{failure.pk}")
    message = run.outbox[-1]
    run.commit()
    return message


@transaction.atomic
def failed_action_skip(
    *,
    task_id: int,
    event: str,
    actor: Any,
    now: datetime,
    comment: str = "",
    channel: str = Channel.WEB,
) -> WorkflowInstance:
    """Leave the failed step without running it: `onDone` (as if it had succeeded) or one of
    the events of its state (see `skip_choices`)."""
    _, task, failure, run = _locked_review(task_id, actor=actor, channel=channel, now=now)
    choices = skip_choices(failure)
    if event not in choices:
        raise InvalidInput(
            f"'{event}' is not a way on from {failure.state}",
            {"event": [f"Choose one of: {', '.join(choices) or '(none)'}."]},
        )
    state = run.chart.state(failure.state)
    _resolve(
        run,
        task,
        failure,
        FailedActionResolution.SKIPPED,
        actor,
        {"event": event, "comment": comment},
    )
    if event == SKIP_AS_DONE:
        moved = run.take_first(state.invoke_done, {"output": {}, "skipped": True}, task=task)
    else:
        moved = run.take_first(state.on[event], {"skipped": True}, task=task)
    if moved is None:
        raise Conflict(
            f"no transition of '{event}' is allowed now (its guards do not hold)",
            current_state=run.instance.state,
            accepted_events=choices,
        )
    return run.commit()


@transaction.atomic
def failed_action_cancel(
    *, task_id: int, actor: Any, reason: str, now: datetime, channel: str = Channel.WEB
) -> WorkflowInstance:
    """End the request where it is because its step cannot be done."""
    if not (reason or "").strip():
        raise InvalidInput("a reason is required", {"reason": ["Say why it is cancelled."]})
    _, task, failure, run = _locked_review(task_id, actor=actor, channel=channel, now=now)
    _resolve(run, task, failure, FailedActionResolution.CANCELLED, actor, {"reason": reason})
    run.end(InstanceStatus.CANCELLED, event="instance.cancelled", data={"reason": reason})
    return run.commit()
