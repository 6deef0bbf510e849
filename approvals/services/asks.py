"""Asks: a program (an agent) asks a person to approve the action it proposes.

An ask is a request like any other, started through `instance_start` on the built-in
`review-action` definition (approvals/workflows/builtin/review-action.yaml) or on a workflow of
the caller's choice, with an `Ask` row beside it that says which API token asked and what
action it proposes. Who may be asked is a permission per role (`AskPermission`, set in the
admin); the asking account is the request's requester, so `forbid_requester` keeps it from
approving its own ask. A reviewer may approve with changed arguments
(APPROVE_WITH_CHANGES, validated here against the action's JSON Schema, the difference
recorded in the decision's audit event).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonpatch
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from approvals.integrations.http import target_problem
from approvals.machine.durations import DurationError, parse_duration
from approvals.models import (
    LIVE_TASK_STATUSES,
    WEBHOOK_EVENT_TYPES,
    ApiToken,
    Ask,
    Channel,
    DefinitionStatus,
    Task,
    WebhookSubscription,
    WorkflowDefinition,
    WorkflowInstance,
)
from approvals.request_schema import form_errors
from approvals.services.definitions import definition_import, definition_parse
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.storable import json_problem, text_problem

REVIEW_ACTION = "review-action"
REVIEW_ACTION_FILE = Path(__file__).resolve().parent.parent / "workflows/builtin/review-action.yaml"
APPROVE_WITH_CHANGES = "APPROVE_WITH_CHANGES"
ACTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$")
MAX_ROLES = 10
# The longest an ask may wait for its answer.
MAX_EXPIRY = timedelta(days=30)

_installed: dict[str, int] = {}


def review_action_definition(*, now: datetime) -> WorkflowDefinition:
    """The published `review-action`, installed from its file the first time this process
    needs it and whenever the file changed (definition_import is idempotent: publishing what
    is already published is a no-op, so concurrent processes agree)."""
    text = REVIEW_ACTION_FILE.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    published = WorkflowDefinition.objects.filter(
        key=REVIEW_ACTION, status=DefinitionStatus.PUBLISHED
    ).first()
    if published is not None and _installed.get(digest) == published.pk:
        return published
    definition = definition_import(
        config=definition_parse(text, filename=REVIEW_ACTION_FILE.name),
        actor=None,
        publish=True,
        now=now,
    )
    transaction.on_commit(lambda: _installed.__setitem__(digest, definition.pk))
    return definition


def askable_role_names(user: Any) -> set[str]:
    """The roles this account's tokens may ask (AskPermission)."""
    return set(Group.objects.filter(ask_permission__users=user).values_list("name", flat=True))


@transaction.atomic
def ask_create(
    *,
    token: ApiToken,
    workflow: str,
    title: str,
    action: Mapping[str, Any] | None,
    context: Any,
    now: datetime,
    roles: list[str] | None = None,
    sla: str | None = None,
    expires_in: str | None = None,
    business_key: str = "",
    callback_url: str = "",
) -> WorkflowInstance:
    """Start the request an ask makes, on behalf of the token's user. Everything is checked
    before anything is written; a refusal writes nothing."""
    actor = token.user
    name, arguments, schema = _checked_action(action, required=workflow == REVIEW_ACTION)
    callback_url = _checked_callback(callback_url)
    allowed = askable_role_names(actor)
    expires_at = None
    if workflow == REVIEW_ACTION:
        markdown = _checked_markdown(context)
        roles = _checked_roles(roles, allowed)
        form: dict[str, Any] = {"action": name, "roles": roles}
        if sla is not None:
            _checked_duration("sla", sla)
            form["sla"] = sla
        expiry = _checked_duration("expires_in", expires_in or "P1D")
        form["expires_in"] = expires_in or "P1D"
        expires_at = now + expiry
        review_action_definition(now=now)
        instance = instance_start(
            definition_key=REVIEW_ACTION,
            context=form,
            title=title or name,
            business_key=business_key,
            actor=actor,
            now=now,
            channel=Channel.API,
        )
    else:
        if not WorkflowDefinition.objects.filter(
            key=workflow, status=DefinitionStatus.PUBLISHED
        ).exists():
            raise InvalidInput(
                f"no published workflow '{workflow}'",
                {"workflow": [f"Unknown workflow '{workflow}'."]},
            )
        for field, value in (("roles", roles), ("sla", sla), ("expires_in", expires_in)):
            if value is not None:
                raise InvalidInput(
                    f"{field} is given only to {REVIEW_ACTION}",
                    {field: [f"Only for {REVIEW_ACTION}; the workflow '{workflow}' sets it."]},
                )
        markdown = ""
        try:
            instance = instance_start(
                definition_key=workflow,
                context={} if context is None else context,
                title=title,
                business_key=business_key,
                actor=actor,
                now=now,
                channel=Channel.API,
            )
        except InvalidInput as exc:
            raise _form_errors_under_context(exc) from None
        asked = set(
            Task.objects.filter(instance=instance, status__in=LIVE_TASK_STATUSES).values_list(
                "candidate_groups__name", flat=True
            )
        ) - {None}
        refused = sorted(asked - allowed)
        if refused:
            raise NotAllowed(
                f"this token's account may not ask {', '.join(refused)} "
                "(an admin grants it under Who may ask roles)"
            )
    if callback_url:
        WebhookSubscription.objects.create(
            name=f"callback of ask #{instance.pk} ({token.name})"[:100],
            url=callback_url,
            secret=secrets.token_urlsafe(32),
            event_types=list(WEBHOOK_EVENT_TYPES),
            instance=instance,
        )
    Ask.objects.create(
        instance=instance,
        token=token,
        agent=token.name,
        action_name=name,
        arguments=arguments,
        schema=schema,
        context=markdown,
        expires_at=expires_at,
        callback_url=callback_url,
        created_at=now,
    )
    return instance


def _form_errors_under_context(exc: InvalidInput) -> InvalidInput:
    """The workflow form's field errors named under the ask's `context` (`context.amount`)."""
    own = {"title", "business_key", "workflow"}
    return InvalidInput(
        exc.message,
        {
            name if name in own else "context" if name == "__all__" else f"context.{name}": msgs
            for name, msgs in exc.field_errors.items()
        },
    )


def _checked_action(
    action: Mapping[str, Any] | None, *, required: bool
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    if action is None:
        if required:
            raise InvalidInput("an action is required", {"action": ["This field is required."]})
        return "", {}, None
    if not isinstance(action, Mapping):
        raise InvalidInput("the action must be an object", {"action": ["Must be an object."]})
    unknown = sorted(set(action) - {"name", "arguments", "schema"})
    if unknown:
        raise InvalidInput(
            "the action has unknown keys", {f"action.{k}": ["Unknown field."] for k in unknown}
        )
    name = action.get("name")
    if not isinstance(name, str) or not ACTION_NAME.match(name):
        raise InvalidInput(
            "the action needs a name",
            {"action.name": ["A name such as send_refund (letters, digits, _ . : -)."]},
        )
    arguments = action.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise InvalidInput(
            "the arguments must be an object", {"action.arguments": ["Must be a JSON object."]}
        )
    schema = action.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise InvalidInput(
                "the schema must be an object", {"action.schema": ["Must be a JSON Schema."]}
            )
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise InvalidInput(
                "the schema is not a JSON Schema",
                {"action.schema": [f"Not a valid JSON Schema: {exc.message}"]},
            ) from None
    size = len(json.dumps(dict(action), separators=(",", ":"), default=str).encode())
    if size > settings.ASK_MAX_ACTION_BYTES:
        raise InvalidInput(
            "the action is too large",
            {"action": [f"At most {settings.ASK_MAX_ACTION_BYTES} bytes of JSON ({size} sent)."]},
        )
    arguments = dict(arguments)
    if schema is not None:
        errors = arguments_errors(schema, arguments, prefix="action.arguments")
        if errors:
            raise InvalidInput("the arguments do not match their schema", errors)
    return name, arguments, dict(schema) if schema is not None else None


def arguments_errors(
    schema: Mapping[str, Any], arguments: Mapping[str, Any], *, prefix: str
) -> dict[str, list[str]]:
    """Messages per place in the arguments, named from `prefix` (`data.arguments.amount`)."""
    return {
        prefix if where == "__all__" else f"{prefix}.{where}": messages
        for where, messages in form_errors(schema, arguments).items()
    }


def _checked_markdown(context: Any) -> str:
    if context is None:
        return ""
    if not isinstance(context, str):
        raise InvalidInput(
            "the context must be Markdown text", {"context": ["Must be a string (Markdown)."]}
        )
    problem = text_problem(context)
    if problem:
        raise InvalidInput("the context cannot be stored", {"context": [problem]})
    if len(context) > settings.ASK_MAX_CONTEXT_CHARS:
        raise InvalidInput(
            "the context is too long",
            {"context": [f"At most {settings.ASK_MAX_CONTEXT_CHARS} characters."]},
        )
    return context


def _checked_roles(roles: Any, allowed: set[str]) -> list[str]:
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
        raise InvalidInput("roles are required", {"roles": ["A list of role names."]})
    roles = list(dict.fromkeys(roles))
    if len(roles) > MAX_ROLES:
        raise InvalidInput("too many roles", {"roles": [f"At most {MAX_ROLES} roles."]})
    existing = set(Group.objects.filter(name__in=roles).values_list("name", flat=True))
    missing = [r for r in roles if r not in existing]
    if missing:
        raise InvalidInput("no such role", {"roles": [f"No role '{name}'." for name in missing]})
    refused = [r for r in roles if r not in allowed]
    if refused:
        raise NotAllowed(
            f"this token's account may not ask {', '.join(refused)} "
            "(an admin grants it under Who may ask roles)"
        )
    return roles


def _checked_duration(field: str, value: Any) -> timedelta:
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field} must be a duration", {field: ["An ISO 8601 duration such as PT4H."]}
        )
    try:
        duration = parse_duration(value)
    except DurationError as exc:
        raise InvalidInput(f"{field} is not a duration", {field: [str(exc)]}) from None
    if duration > MAX_EXPIRY:
        raise InvalidInput(f"{field} is too long", {field: ["At most 30 days (P30D)."]})
    return duration


def _checked_callback(url: str) -> str:
    if not url:
        return ""
    problem = target_problem(
        url, allow_private=settings.ALLOW_PRIVATE_WEBHOOK_TARGETS, resolve=False
    )
    if problem:
        raise InvalidInput("the callback URL is refused", {"callback_url": [problem]})
    return url


def approved_arguments(
    ask: Ask, event: str, data: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The arguments a decision approves and their difference from the proposed ones (a JSON
    Patch, RFC 6902). APPROVE approves them as proposed, APPROVE_WITH_CHANGES the edited
    `data.arguments` (checked against the action's schema); other decisions approve none.
    InvalidInput names the place that breaks the schema (`data.arguments.amount`)."""
    given = (data or {}).get("arguments")
    if event != APPROVE_WITH_CHANGES:
        if given is not None:
            raise InvalidInput(
                "arguments are changed only with APPROVE_WITH_CHANGES",
                {"data.arguments": [f"Decide {APPROVE_WITH_CHANGES} to change the arguments."]},
            )
        return (dict(ask.arguments) if event == "APPROVE" else None), []
    if not isinstance(given, Mapping):
        raise InvalidInput(
            "the changed arguments are required",
            {"data.arguments": ["The approved arguments, as a JSON object."]},
        )
    given = dict(given)
    problem = json_problem(given)
    if problem:
        where, message = problem
        raise InvalidInput(
            message, {f"data.arguments.{where}" if where else "data.arguments": [message]}
        )
    if ask.schema is not None:
        errors = arguments_errors(ask.schema, given, prefix="data.arguments")
        if errors:
            raise InvalidInput("the arguments do not match their schema", errors)
    return given, list(jsonpatch.make_patch(ask.arguments, given))
