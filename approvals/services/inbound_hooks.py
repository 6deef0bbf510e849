"""Inbound webhooks, their writes: a signed POST /hooks/<workflow key>/<hook id>/ starts a
request of the workflow, or sends an event to its request found by business key.

Signed as our outgoing webhooks are (integrations/webhooks/signing.py, the same code):
`X-Signoff-Timestamp` (Unix seconds, within INBOUND_HOOK_TOLERANCE_SECONDS of now) and
`X-Signoff-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. Each delivery
carries an `X-Signoff-Delivery` id; the id is stored in the transaction of what the delivery
did, so the same id again is a replay (409), and a refused delivery (bad signature, a mapping
that fails, a form that refuses the data) writes nothing, not even its id: the sender may fix
it and send it again.

The hook's `mapping` fills the request's form (start) or the event's data (event): each field
from a JSON Pointer into the body (RFC 6901, a value that starts with "/": `/order/total`) or
an expression of the engine's language whose bare names are the body's fields
(`order.total * 100`). `business_key` is read the same way.

The secret is stored as it is (verifying an HMAC needs it; a hash would not do), as the
outgoing subscriptions' secrets are: reading the table is being able to sign.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonpointer
from django.conf import settings
from django.db import IntegrityError, transaction

from approvals import tracing
from approvals.integrations.webhooks.signing import signature_problem
from approvals.machine.expressions import ExpressionError, compile_expression
from approvals.machine.validation import FIELD_NAME_PATTERN
from approvals.models import (
    Channel,
    DefinitionStatus,
    HookAction,
    InboundDelivery,
    InboundHook,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.instances import send_event, start_on
from approvals.services.triggers import trigger_requester

MIN_SECRET = 16
MAX_DELIVERY_ID = 200


@dataclass(frozen=True)
class HookOutcome:
    """What a delivery did: the request it started (`started`) or the one its event moved."""

    instance: WorkflowInstance
    started: bool


class HookNotFound(NotAllowed):
    """No active hook at this path (404): the same answer for a wrong key and a wrong id."""


class BadSignature(NotAllowed):
    """The delivery is not signed with the hook's secret, or not now (401)."""


class Replayed(Conflict):
    """This delivery id was accepted before (409)."""


class BadBody(InvalidInput):
    """The body is not a JSON document, or a header is missing (400)."""


class MappingFailed(InvalidInput):
    """The body does not give what the mapping reads, or the form refuses it (422)."""


def _is_pointer(source: str) -> bool:
    return source.startswith("/")


def mapping_problems(mapping: Any, business_key: str = "") -> dict[str, list[str]]:
    """What is wrong with a hook's mapping and business-key source, per field."""
    problems: dict[str, list[str]] = {}
    if not isinstance(mapping, Mapping):
        return {"mapping": ["Expected an object of field -> JSON Pointer or expression."]}
    sources = {f"mapping.{name}": source for name, source in mapping.items()}
    for name in mapping:
        if not isinstance(name, str) or not FIELD_NAME_PATTERN.fullmatch(name):
            problems.setdefault("mapping", []).append(f"{name!r} is not a field name.")
    if business_key:
        sources["business_key"] = business_key
    for where, source in sources.items():
        if not isinstance(source, str) or not source.strip():
            problems.setdefault(where, []).append("Expected a JSON Pointer or an expression.")
            continue
        try:
            if _is_pointer(source):
                jsonpointer.JsonPointer(source)
            else:
                compile_expression(source)
        except (jsonpointer.JsonPointerException, ExpressionError) as exc:
            problems.setdefault(where, []).append(f"{source}: {exc}")
    return problems


def inbound_hook_check(
    *,
    workflow_key: str,
    name: str,
    secret: str = "",
    action: str = HookAction.START,
    event: str = "",
    business_key: str = "",
    mapping: Mapping[str, Any] | None = None,
    run_as: Any = None,
    changing: InboundHook | None = None,
) -> WorkflowDefinition:
    """Refuse (InvalidInput, per field) a hook that could not work (`changing`: the hook
    being edited, whose own name is no clash); its workflow's published version otherwise."""
    definition = _published(workflow_key)
    if definition is None:
        raise InvalidInput(
            f"no published workflow '{workflow_key}'",
            {"workflow_key": [f"Unknown workflow '{workflow_key}'."]},
        )
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a hook needs a name", {"name": ["1 to 100 characters."]})
    others = InboundHook.objects.exclude(pk=changing.pk) if changing else InboundHook.objects
    if others.filter(workflow_key=workflow_key, name=name).exists():
        raise InvalidInput(
            f"{workflow_key} already has a hook named '{name}'",
            {"name": [f"{workflow_key} already has a hook named '{name}'."]},
        )
    if secret and len(secret) < MIN_SECRET:
        raise InvalidInput(
            "the secret is too short", {"secret": [f"At least {MIN_SECRET} characters."]}
        )
    if action not in HookAction.values:
        raise InvalidInput(
            f"unknown action '{action}'", {"action": [f"One of {', '.join(HookAction.values)}."]}
        )
    if action == HookAction.EVENT and (not event or not business_key):
        raise InvalidInput(
            "an event hook needs the event and where the body holds the business key",
            {
                **({"event": ["Name the event sent, e.g. PAID."]} if not event else {}),
                **({"business_key": ["e.g. /order/id"]} if not business_key else {}),
            },
        )
    problems = mapping_problems(mapping or {}, business_key)
    if problems:
        raise InvalidInput("the mapping has errors", problems)
    trigger_requester(definition, run_as)
    return definition


@transaction.atomic
def inbound_hook_create(
    *,
    workflow_key: str,
    name: str,
    now: datetime,
    secret: str = "",
    action: str = HookAction.START,
    event: str = "",
    business_key: str = "",
    mapping: Mapping[str, Any] | None = None,
    run_as: Any = None,
) -> tuple[InboundHook, str]:
    """A new hook of a published workflow and its secret (the given one, else a new random
    one): the only time the secret is handed out."""
    inbound_hook_check(
        workflow_key=workflow_key,
        name=name,
        secret=secret,
        action=action,
        event=event,
        business_key=business_key,
        mapping=mapping,
        run_as=run_as,
    )
    secret = secret or secrets.token_urlsafe(32)
    hook = InboundHook.objects.create(
        workflow_key=workflow_key,
        name=name.strip(),
        hook_id=secrets.token_urlsafe(16),
        secret=secret,
        action=action,
        event=event,
        business_key=business_key,
        mapping=dict(mapping or {}),
        run_as=run_as or None,
        created_at=now,
    )
    return hook, secret


def _published(workflow_key: str) -> WorkflowDefinition | None:
    return (
        WorkflowDefinition.objects.filter(key=workflow_key, status=DefinitionStatus.PUBLISHED)
        .select_related("created_by")
        .first()
    )


@tracing.service_span("signoff.inbound_hook_receive")
@transaction.atomic
def inbound_hook_receive(
    *,
    workflow_key: str,
    hook_id: str,
    body: bytes,
    timestamp: str,
    signature: str,
    delivery_id: str,
    now: datetime,
) -> HookOutcome:
    """One signed delivery: the request it started, or the one its event moved."""
    hook = (
        InboundHook.objects.filter(workflow_key=workflow_key, hook_id=hook_id, is_active=True)
        .select_related("run_as")
        .first()
    )
    if hook is None:
        raise HookNotFound("no such hook")
    problem = signature_problem(
        hook.secret,
        timestamp,
        body,
        signature,
        tolerance=settings.INBOUND_HOOK_TOLERANCE_SECONDS,
        now=now.timestamp(),
    )
    if problem:
        raise BadSignature(problem)
    delivery_id = delivery_id.strip()
    if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
        raise BadBody(
            "X-Signoff-Delivery is required",
            {
                "X-Signoff-Delivery": [
                    f"A unique id of this delivery, 1 to {MAX_DELIVERY_ID} chars."
                ]
            },
        )
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody("the body is not JSON", {"body": [str(exc)]}) from None
    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(
                hook=hook, delivery_id=delivery_id, received_at=now
            )
    except IntegrityError:
        raise Replayed(f"the delivery {delivery_id} was received before") from None
    definition = _published(workflow_key)
    if definition is None:
        raise Conflict(f"the workflow {workflow_key} has no published version")
    values = _mapped(hook.mapping, document)
    key = _read("business_key", hook.business_key, document) if hook.business_key else ""
    if key is not None and not isinstance(key, str | int):
        raise MappingFailed(
            "the business key must be text or a whole number",
            {"business_key": [f"{hook.business_key}: got {json.dumps(key)[:100]}"]},
        )
    actor = trigger_requester(definition, hook.run_as)
    if hook.action == HookAction.EVENT:
        instance = _event(hook, str(key), values, actor=actor, now=now)
    else:
        try:
            instance = start_on(
                definition,
                context=values,
                actor=actor,
                now=now,
                business_key=str(key),
                channel=Channel.HOOK,
                trigger={
                    "hook": hook.name,
                    "delivery": delivery_id,
                    "message": f"started by the inbound webhook {hook.name}",
                },
            )
        except InvalidInput as exc:
            raise MappingFailed(exc.message, _prefixed(exc.field_errors)) from None
    delivery.instance = instance
    delivery.save(update_fields=["instance"])
    return HookOutcome(instance=instance, started=hook.action == HookAction.START)


def _event(
    hook: InboundHook, key: str, data: dict[str, Any], *, actor: Any, now: datetime
) -> WorkflowInstance:
    found = (
        WorkflowInstance.objects.filter(workflow_key=hook.workflow_key, business_key=key)
        .values_list("pk", flat=True)
        .first()
    )
    if not key or found is None:
        raise MappingFailed(
            f"no request of {hook.workflow_key} has the business key '{key}'",
            {"business_key": [f"{hook.business_key}: no request has the business key '{key}'"]},
        )
    return send_event(
        instance_id=found, event=hook.event, actor=actor, now=now, data=data, channel=Channel.HOOK
    )


def _prefixed(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {
        name if name == "business_key" else f"context.{name}": messages
        for name, messages in errors.items()
    }


def _mapped(mapping: Mapping[str, Any], document: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, source in mapping.items():
        try:
            values[name] = _read(f"mapping.{name}", source, document)
        except MappingFailed as exc:
            for where, messages in exc.field_errors.items():
                errors.setdefault(where, []).extend(messages)
    if errors:
        raise MappingFailed("the body does not fit the hook's mapping", errors)
    return values


def _read(where: str, source: str, document: Any) -> Any:
    """The value `source` (a JSON Pointer or an expression) reads from the body."""
    if _is_pointer(source):
        try:
            return jsonpointer.resolve_pointer(document, source)
        except jsonpointer.JsonPointerException as exc:
            raise MappingFailed(
                f"{source}: nothing there in the body", {where: [f"{source}: {exc}"]}
            ) from None
    scope = document if isinstance(document, Mapping) else {}
    try:
        return compile_expression(source).evaluate(scope, scope)
    except ExpressionError as exc:
        raise MappingFailed(f"{source}: {exc}", {where: [f"{source}: {exc}"]}) from None


def inbound_deliveries_purge(*, now: datetime) -> int:
    """Forget delivery ids older than twice the timestamp tolerance: a replay of one that old
    is refused by its timestamp already."""
    cutoff = now - timedelta(seconds=2 * settings.INBOUND_HOOK_TOLERANCE_SECONDS)
    deleted, _ = InboundDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted
