"""Starting requests, external events, withdrawing and cancelling."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from approvals import sensitive, tracing
from approvals.machine.titles import placeholders, render_title
from approvals.models import (
    Channel,
    DefinitionStatus,
    InstanceStatus,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.permissions import can_operate, is_active_user
from approvals.request_schema import form_errors, with_defaults
from approvals.services.definitions import statechart_for
from approvals.services.engine import Run
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.locking import lock_instance

MAX_TITLE = 200
MAX_BUSINESS_KEY = 100


@tracing.service_span("signoff.instance_start")
@transaction.atomic
def instance_start(
    *,
    definition_key: str,
    context: Any,
    actor: Any,
    now: datetime,
    title: str = "",
    business_key: str = "",
    channel: str = Channel.WEB,
) -> WorkflowInstance:
    """A new request on the key's published version, moved as far as its `always` go."""
    if not is_active_user(actor):
        raise NotAllowed("sign in to start a request")
    definition = WorkflowDefinition.objects.filter(
        key=definition_key, status=DefinitionStatus.PUBLISHED
    ).first()
    if definition is None:
        raise InvalidInput(
            f"no published workflow '{definition_key}'",
            {"workflow": [f"Unknown workflow '{definition_key}'."]},
        )
    return start_on(
        definition,
        context=context,
        actor=actor,
        now=now,
        title=title,
        business_key=business_key,
        channel=channel,
    )


def start_on(
    definition: WorkflowDefinition,
    *,
    context: Any,
    actor: Any,
    now: datetime,
    title: str = "",
    business_key: str = "",
    channel: str,
    parent: WorkflowInstance | None = None,
    parent_state: str = "",
    parent_visit: int | None = None,
    parent_index: int | None = None,
    trigger: Mapping[str, Any] | None = None,
) -> WorkflowInstance:
    """A new request on this version (instance_start, a sub-workflow step's child, whose
    `parent` step started it, and a start trigger's, which `trigger` describes for the
    audit trail). The caller holds the transaction."""
    chart = statechart_for(definition)
    if isinstance(context, Mapping):
        context = with_defaults(chart.form, context)
    errors = form_errors(chart.form, context)
    if errors:
        raise InvalidInput("the request has errors", errors)
    if sensitive.names_of(definition) and sensitive.keyring().current is None:
        raise Conflict(
            f"the workflow '{definition.key}' has sensitive fields, which cannot be stored "
            "until an administrator sets FIELD_ENCRYPTION_KEYS"
        )
    title = str(title or "").strip() or request_title(definition, context, actor)
    if len(title) > MAX_TITLE:
        raise InvalidInput("the title is too long", {"title": [f"At most {MAX_TITLE} characters."]})
    business_key = str(business_key or "").strip()
    if len(business_key) > MAX_BUSINESS_KEY:
        raise InvalidInput(
            "the reference is too long",
            {"business_key": [f"At most {MAX_BUSINESS_KEY} characters."]},
        )
    taken = WorkflowInstance.objects.filter(workflow_key=definition.key, business_key=business_key)
    if business_key and taken.exists():
        raise _reference_taken(business_key)
    try:
        # A savepoint: when a request with the same reference committed since the check above,
        # the insert breaks the constraint and only the insert is undone; the transaction can
        # still ask what broke it.
        with transaction.atomic():
            instance = WorkflowInstance.objects.create(
                definition=definition,
                workflow_key=definition.key,
                requester=actor,
                title=title,
                business_key=business_key,
                context=context,
                state=chart.initial,
                created_at=now,
                updated_at=now,
                parent=parent,
                parent_state=parent_state,
                parent_visit=parent_visit,
                parent_index=parent_index,
            )
    except IntegrityError:
        if business_key and taken.exists():
            raise _reference_taken(business_key) from None
        raise
    run = Run(instance, chart, actor=actor, channel=channel, now=now)
    run.start(trigger)
    return run.commit()


def request_title(definition: WorkflowDefinition, context: Mapping[str, Any], actor: Any) -> str:
    """A new request's title: the definition's title template filled from the form, else
    the form's own `title` field, else the workflow's name."""
    if placeholders(definition.title):
        return render_title(
            definition.title, context, str(actor), form=definition.form_schema or {}
        )
    return str(context.get("title") or "").strip() or definition.name


def _reference_taken(business_key: str) -> InvalidInput:
    return InvalidInput(
        f"the reference '{business_key}' is taken",
        {
            "business_key": [
                f"Another request of this workflow already has the reference '{business_key}'."
            ]
        },
    )


def _locked_run(
    instance_id: int, *, actor: Any, channel: str, now: datetime
) -> tuple[WorkflowInstance, Run]:
    instance = lock_instance(instance_id=instance_id)
    return instance, Run(
        instance, statechart_for(instance.definition), actor=actor, channel=channel, now=now
    )


@tracing.service_span("signoff.instance_send_event")
@transaction.atomic
def instance_send_event(
    *,
    instance_id: int,
    event: str,
    actor: Any,
    now: datetime,
    data: Mapping[str, Any] | None = None,
    channel: str = Channel.API,
) -> WorkflowInstance:
    """An external event ("PAYMENT_RECEIVED"). Events of human tasks are decided on the task."""
    if not can_operate(actor, "send_event"):
        raise NotAllowed("you may not send events to requests")
    return send_event(
        instance_id=instance_id, event=event, actor=actor, now=now, data=data, channel=channel
    )


def send_event(
    *,
    instance_id: int,
    event: str,
    actor: Any,
    now: datetime,
    data: Mapping[str, Any] | None,
    channel: str,
) -> WorkflowInstance:
    """An external event, its move, once the caller is authorised (instance_send_event, an
    inbound webhook whose signature is its authority). The caller holds the transaction."""
    if data is not None and not isinstance(data, Mapping):
        raise InvalidInput("event data must be an object", {"data": ["Must be an object."]})
    instance, run = _locked_run(instance_id, actor=actor, channel=channel, now=now)
    for path in run.active_paths():
        state = run.chart.state(path)
        if state.task is not None and event in state.on:
            raise Conflict(
                f"'{event}' in {path} is a decision of its task; decide it on the task",
                current_state=instance.state,
                accepted_events=run.accepted_events(),
            )
    run.fire(event, data or {})
    return run.commit()


@tracing.service_span("signoff.instance_withdraw")
@transaction.atomic
def instance_withdraw(
    *, instance_id: int, actor: Any, now: datetime, comment: str = "", channel: str = Channel.WEB
) -> WorkflowInstance:
    """The requester stops their own request (`Run.withdraw`): by the state's WITHDRAW, else
    to the definition's withdrawn state, else where it is; its status is then withdrawn."""
    instance, run = _locked_run(instance_id, actor=actor, channel=channel, now=now)
    if instance.requester_id != getattr(actor, "pk", None):
        raise NotAllowed("only the requester can withdraw a request")
    if not instance.is_active:
        raise Conflict(f"the request is already {instance.status}", current_state=instance.state)
    run.withdraw({"comment": comment} if comment else {})
    return run.commit()


@tracing.service_span("signoff.instance_cancel")
@transaction.atomic
def instance_cancel(
    *, instance_id: int, actor: Any, reason: str, now: datetime, channel: str = Channel.ADMIN
) -> WorkflowInstance:
    """An operator ends a request where it is; its open tasks are cancelled."""
    if not can_operate(actor, "cancel_instance"):
        raise NotAllowed("you may not cancel requests")
    if not reason.strip():
        raise InvalidInput("a reason is required", {"reason": ["Say why it is cancelled."]})
    instance, run = _locked_run(instance_id, actor=actor, channel=channel, now=now)
    if not instance.is_active:
        raise Conflict(f"the request is already {instance.status}", current_state=instance.state)
    run.end(InstanceStatus.CANCELLED, event="instance.cancelled", data={"reason": reason})
    return run.commit()
