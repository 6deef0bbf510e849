"""Start triggers, what they share, and the completion trigger's writes.

Three things start requests without a person pressing "start": a definition's schedules
(services/schedules.py), its inbound webhooks (services/inbound_hooks.py), and a final state's
`on_complete_start: {workflow, input}`, here.

Who the requester is: a schedule's `run_as` or a hook's `run_as`, a named service account;
left out, the owner of the version that starts (the user who created it, `created_by`). A
completion trigger's request is the ended request's requester's, as a sub-workflow's child is
its parent's.

A request ending in a final state with `on_complete_start` writes a `trigger.complete_start`
outbox message in the transaction of its end (engine `Run._finish`); after commit
`completion_start_deliver` locks the ended request by id, re-checks the message, and starts
the other workflow's request in the same transaction, its form filled from `input` by the
code a sub-workflow's input uses. A request that cannot start (no published version, its form
refuses the input) is recorded on the ended request's trail as `trigger.failed` and the
message is marked failed with the reason; nothing is half-started.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from approvals import tracing
from approvals.models import (
    Channel,
    OutboxMessage,
    OutboxStatus,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.automated_steps import DONE, FAILED, NOT_DUE
from approvals.services.definitions import child_definition, statechart_for
from approvals.services.engine import COMPLETION_START, Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import start_on
from approvals.services.locking import lock_instance
from approvals.services.subflows import mapped_input, reason

TRIGGER_TOPICS = (COMPLETION_START,)


def trigger_requester(definition: WorkflowDefinition, run_as: Any) -> Any:
    """The user a trigger starts requests of `definition` as: `run_as` (a user or a username)
    when given, else the version's owner. InvalidInput when that is no active user."""
    if isinstance(run_as, str) and run_as:
        user = get_user_model().objects.filter(username=run_as).first()
        who = f"the user {run_as}"
    elif run_as:
        user, who = run_as, f"the user {run_as}"
    else:
        user, who = definition.created_by, f"the owner of {definition}"
    if user is None or not user.is_active:
        raise InvalidInput(
            f"{who} is not an active user to start requests as",
            {"run_as": ["Name an active user (a service account) to start requests as."]},
        )
    return user


@tracing.service_span("signoff.completion_start_deliver")
def completion_start_deliver(*, message_id: int, now: datetime) -> str:
    """Deliver one `trigger.complete_start` message (what the Celery task calls). Returns
    DONE, FAILED (the other request could not start) or NOT_DUE (delivered already)."""
    with transaction.atomic():
        instance_id = OutboxMessage.objects.values_list("instance_id", flat=True).get(pk=message_id)
        ended = lock_instance(instance_id=instance_id)
        message = OutboxMessage.objects.get(pk=message_id)
        if message.status != OutboxStatus.PENDING:
            return NOT_DUE
        run = Run(
            ended, statechart_for(ended.definition), actor=None, channel=Channel.SYSTEM, now=now
        )
        state = run.chart.state(message.payload["state"])
        assert state.complete_start is not None
        try:
            # A savepoint: a request that cannot start leaves nothing behind.
            with transaction.atomic():
                started = _start(run, state.path, state.complete_start)
        except (InvalidInput, Conflict, NotAllowed) as exc:
            problem = (
                f"the request of {state.complete_start.workflow} could not start: {reason(exc)}"
            )
            run.record("trigger.failed", to_state=state.path, data={"error": problem})
            run.commit()
            message.status = OutboxStatus.FAILED
            message.last_error = problem
            message.save(update_fields=["status", "last_error"])
            return FAILED
        run.record(
            "trigger.started",
            to_state=state.path,
            data={
                "request": started.pk,
                "workflow": started.definition.key,
                "version": started.definition.version,
                "message": f"started request #{started.pk} ({started.definition.key} "
                f"version {started.definition.version})",
            },
        )
        run.commit()
        message.status = OutboxStatus.DELIVERED
        message.delivered_at = now
        message.save(update_fields=["status", "delivered_at"])
        return DONE


def _start(run: Run, state_path: str, trigger: Any) -> WorkflowInstance:
    definition = child_definition(trigger.workflow)
    if definition is None:
        raise InvalidInput(
            f"there is no published workflow {trigger.workflow}"
            if trigger.workflow.version is None
            else f"{trigger.workflow} is not published or retired",
            {},
        )
    ended = run.instance
    context = mapped_input(trigger.input, ended.context, budget=run.budget)
    return start_on(
        definition,
        context=context,
        actor=ended.requester,
        now=run.now,
        channel=Channel.SYSTEM,
        trigger={
            "completion_of": ended.pk,
            "state": state_path,
            "message": f"started when request #{ended.pk} ended in {state_path}",
        },
    )
