"""Sub-workflows, their writes: a step that starts a child request of another workflow, and the
child's end arriving at its parent.

`invoke: {src: "workflow:<key>[@<version>]", input: {...}, onDone, onError}` on a state makes
the engine write a `subflow.start` outbox message in the transaction of the move. After commit
(`approvals.automation.subflows`) `subflow_start` locks the parent by id, re-checks that the
step is still current, and creates the child in the same transaction, as the parent's
requester, its form filled from `input` (each an expression over the parent's context). A
child that cannot start (no such version, its form refuses the input, an expression fails)
sends the parent to the step's onError with the reason.

When the child ends, its own transaction writes a `subflow.ended` message (engine `Run`);
after that commit `subflow_ended` locks the parent by id and moves it: onDone when the child
completed, with `context[<step name>] = {request, state, status, output}`, else onError. A
transaction never takes a parent's lock while it holds a child's: parents lock their children
(cancellation, in the engine), children tell their parents through the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from approvals import tracing
from approvals.machine.expressions import Budget, Expression, ExpressionError
from approvals.machine.statechart import State
from approvals.models import (
    Channel,
    InstanceStatus,
    OutboxMessage,
    OutboxStatus,
    WorkflowInstance,
)
from approvals.services.automated_steps import (
    DONE,
    FAILED,
    NOT_DUE,
    open_step_review,
    step_is_current,
)
from approvals.services.definitions import child_definition, statechart_for
from approvals.services.engine import SUBFLOW_ENDED, SUBFLOW_START, Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import start_on
from approvals.services.locking import lock_instance

SUBFLOW_TOPICS = (SUBFLOW_START, SUBFLOW_ENDED)


class _HandlerFailed(Exception):
    """The parent's onDone/onError failed part way (a guard or assign further along raised):
    its moves went with the rolled-back transaction; the second pass opens a review."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def subflow_deliver(*, message_id: int, now: datetime) -> str:
    """Deliver one `subflow.start` or `subflow.ended` message (what the Celery task calls).
    Returns DONE, FAILED (the child could not start: the parent took onError) or NOT_DUE
    (delivered already, or the parent's step is no longer current)."""
    try:
        return _deliver(message_id, now=now)
    except _HandlerFailed as failed:
        return _deliver(message_id, now=now, handler_problem=failed.problem)


@tracing.service_span("signoff.subflow_deliver")
def _deliver(message_id: int, *, now: datetime, handler_problem: str | None = None) -> str:
    with transaction.atomic():
        topic, instance_id, payload = OutboxMessage.objects.values_list(
            "topic", "instance_id", "payload"
        ).get(pk=message_id)
        # The parent's lock, by id, first: for an end it is the message's payload that names it.
        parent_id = instance_id if topic == SUBFLOW_START else payload["parent"]
        parent = lock_instance(instance_id=parent_id)
        message = OutboxMessage.objects.get(pk=message_id)
        if message.status != OutboxStatus.PENDING:
            return NOT_DUE
        message.status = OutboxStatus.DELIVERED
        message.delivered_at = now
        message.save(update_fields=["status", "delivered_at"])
        run = Run(
            parent, statechart_for(parent.definition), actor=None, channel=Channel.SYSTEM, now=now
        )
        if topic == SUBFLOW_START:
            return _start(run, message, handler_problem)
        return _ended(run, message, handler_problem)


def _start(run: Run, message: OutboxMessage, handler_problem: str | None) -> str:
    payload = message.payload
    parent = run.instance
    if not step_is_current(parent, payload):
        return NOT_DUE
    state = run.chart.state(payload["state"])
    invoke = state.invoke
    assert invoke is not None and invoke.subflow is not None
    if handler_problem is not None:
        open_step_review(run, message, state, handler_problem)
        run.commit()
        return DONE
    visit = int(payload["visit"])
    first: list[int | None] = [None]
    if invoke.foreach:
        items = parent.context.get(invoke.foreach)
        if not isinstance(items, list):
            return _start_failed(
                run,
                message,
                state,
                f"foreach: the field {invoke.foreach} holds {_kind(items)}, not a list",
            )
        first = list(range(min(invoke.limit or len(items), len(items))))
        context = dict(parent.context)
        # `started` counts this run of the list's children: an operator's retry of the step
        # begins the list again, whatever children earlier runs started.
        context[state.name] = {
            "items": items,
            "results": [None] * len(items),
            "started": len(first),
        }
        run.set_context(context)
        if not items:
            _take(run, message, state, state.invoke_done, {"results": []}, None, done=True)
            run.commit()
            return DONE
    for index in first:
        error = _start_one(run, state, visit, index)
        if error is not None:
            return _start_failed(run, message, state, error)
    run.commit()
    return DONE


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", str: "text", bool: "true or false"}.get(type(value), "a number")


def _start_failed(run: Run, message: OutboxMessage, state: State, error: str) -> str:
    """onError with the reason; leaving the step cancels the children a foreach started."""
    run.record("subflow.failed", to_state=state.path, data={"error": error})
    _take(run, message, state, state.invoke_error, {"error": error}, None)
    run.commit()
    return FAILED


def _start_one(run: Run, state: State, visit: int, index: int | None) -> str | None:
    """Start one child (the item at `index` of a foreach); why it could not, or None."""
    assert state.invoke is not None
    try:
        # A savepoint: a child that cannot start leaves nothing behind.
        with transaction.atomic():
            child = _create_child(run, state, visit, index)
    except (InvalidInput, Conflict, NotAllowed) as exc:
        return f"the sub-request of {state.invoke.subflow} could not start: {reason(exc)}"
    run.record(
        "subflow.started",
        to_state=state.path,
        data={
            "child": child.pk,
            "workflow": child.definition.key,
            "version": child.definition.version,
            **({"index": index} if index is not None else {}),
            "message": f"started sub-request #{child.pk} ({child.definition.key} "
            f"version {child.definition.version})",
        },
    )
    run.emit("subflow.child_started", {"state": state.path, "child": child.pk}, key="child-started")
    return None


def _create_child(run: Run, state: State, visit: int, index: int | None) -> WorkflowInstance:
    invoke = state.invoke
    assert invoke is not None and invoke.subflow is not None
    definition = child_definition(invoke.subflow)
    if definition is None:
        raise InvalidInput(
            f"there is no published workflow {invoke.subflow}"
            if invoke.subflow.version is None
            else f"{invoke.subflow} is not published or retired",
            {},
        )
    parent = run.instance
    scope = parent.context
    if index is not None:
        items = parent.context[state.name]["items"]
        scope = {**parent.context, "item": items[index], "index": index}
    context = mapped_input(invoke.child_input, scope, budget=run.budget)
    return start_on(
        definition,
        context=context,
        actor=parent.requester,
        now=run.now,
        channel=Channel.SYSTEM,
        parent=parent,
        parent_state=state.path,
        parent_visit=visit,
        parent_index=index,
    )


def mapped_input(
    given: tuple[tuple[str, Expression], ...], scope: Mapping[str, Any], *, budget: Budget
) -> dict[str, Any]:
    """A started request's form from `input` (field -> expression over `scope`): what a
    sub-workflow step and a completion trigger hand the workflow they start."""
    context: dict[str, Any] = {}
    for name, expression in given:
        try:
            context[name] = expression.evaluate(scope, None, budget=budget)
        except ExpressionError as exc:
            raise InvalidInput(f"input {name} = '{expression.source}' failed: {exc}", {}) from None
    return context


def reason(exc: InvalidInput | Conflict | NotAllowed) -> str:
    fields = getattr(exc, "field_errors", None) or {}
    details = "; ".join(
        f"{name}: {' '.join(str(m) for m in messages)}"
        for name, messages in fields.items()
        if messages
    )
    return f"{exc.message} ({details})" if details else exc.message


def _ended(run: Run, message: OutboxMessage, handler_problem: str | None) -> str:
    payload = message.payload
    parent = run.instance
    step = {"state": payload["parent_state"], "visit": payload["parent_visit"]}
    if not step_is_current(parent, step):
        return NOT_DUE
    child_id = message.instance_id
    state = run.chart.state(payload["parent_state"])
    outcome = str(payload["outcome"])
    result = {
        "request": child_id,
        "state": payload["state"],
        "status": outcome,
        "output": payload.get("output") or {},
    }
    context = dict(parent.context)
    index = payload.get("parent_index")
    foreach = state.invoke is not None and bool(state.invoke.foreach) and index is not None
    if foreach:
        progress = dict(context.get(state.name) or {})
        results = list(progress.get("results") or [])
        results[index] = result
        context[state.name] = {**progress, "results": results}
    else:
        context[state.name] = result
    run.set_context(context)
    run.record(
        "subflow.ended",
        to_state=state.path,
        data={**result, "child": child_id, "message": f"sub-request #{child_id} ended: {outcome}"},
    )
    run.emit("subflow.child_ended", {"state": state.path, "child": child_id}, key="child-ended")
    start = (
        OutboxMessage.objects.filter(
            instance=parent, topic=SUBFLOW_START, payload__state=step["state"]
        )
        .filter(payload__visit=step["visit"])
        .order_by("-pk")
        .first()
    )
    assert start is not None, "a child's step has its start message"
    completed = outcome == InstanceStatus.COMPLETED and "output_error" not in payload
    if foreach and completed:
        _foreach_next(run, start, state, int(payload["parent_visit"]), results, handler_problem)
    elif completed:
        _take(run, start, state, state.invoke_done, result, handler_problem, done=True)
    else:
        error = payload.get("output_error") or f"the sub-request #{child_id} was {outcome}"
        _take(run, start, state, state.invoke_error, {**result, "error": error}, handler_problem)
    run.commit()
    return DONE


def _foreach_next(
    run: Run,
    start: OutboxMessage,
    state: State,
    visit: int,
    results: list[Any],
    handler_problem: str | None,
) -> None:
    """One child of a foreach completed: all done takes onDone with every result, else the
    next item's child starts (so at most `limit` run at once)."""
    if all(r is not None for r in results):
        _take(
            run, start, state, state.invoke_done, {"results": results}, handler_problem, done=True
        )
        return
    progress = dict(run.instance.context[state.name])
    started = int(progress.get("started") or 0)
    if started < len(results):
        context = dict(run.instance.context)
        context[state.name] = {**progress, "started": started + 1}
        run.set_context(context)
        error = _start_one(run, state, visit, started)
        if error is not None:
            run.record("subflow.failed", to_state=state.path, data={"error": error})
            _take(run, start, state, state.invoke_error, {"error": error}, handler_problem)


def _take(
    run: Run,
    start: OutboxMessage,
    state: State,
    candidates: list[Any],
    data: Mapping[str, Any],
    handler_problem: str | None,
    *,
    done: bool = False,
) -> None:
    """onDone/onError with the child's result as the event's data; when that fails or no guard
    holds, an operator reviews the step (retry starts a new child; skip; cancel)."""
    which = "onDone" if done else "onError"
    problem = handler_problem
    if problem is None:
        try:
            if run.take_first(candidates, data) is not None:
                return
        except Conflict as exc:
            raise _HandlerFailed(
                f"the sub-request ended but its {which} failed: {exc.message}"
            ) from exc
        problem = f"the sub-request ended but none of its {which} guards holds"
    open_step_review(run, start, state, problem)
