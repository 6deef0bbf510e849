"""Automated actions a definition may name (`invoke.src`, `entry`, `exit`).

Definitions refer to actions by name only; the code is registered here, so a definition cannot
smuggle code in. An action takes the instance's context and the step's input and returns a
JSON-serialisable output (stored in the context under the state's name on success).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ActionFunc = Callable[["ActionCall"], Mapping[str, Any] | None]


@dataclass(frozen=True)
class ActionCall:
    instance_id: int
    definition_key: str
    state: str
    context: Mapping[str, Any]
    input: Mapping[str, Any]
    settings: Mapping[str, Any]
    idempotency_key: str


_registry: dict[str, ActionFunc] = {}


def register_action(name: str) -> Callable[[ActionFunc], ActionFunc]:
    def decorator(func: ActionFunc) -> ActionFunc:
        if name in _registry and _registry[name] is not func:
            raise ValueError(f"action {name!r} is registered twice")
        _registry[name] = func
        return func

    return decorator


def action_names() -> set[str]:
    return set(_registry)


def get_action(name: str) -> ActionFunc:
    return _registry[name]


@register_action("notify")
def notify(call: ActionCall) -> Mapping[str, Any]:
    """Tell the requester (and the definition's watchers) a message; delivered as a
    notification by the outbox."""
    return {"message": str(call.input.get("message", ""))}


@register_action("webhook")
def webhook(call: ActionCall) -> Mapping[str, Any]:
    """POST the instance as JSON to the definition's `settings.webhook_url`, signed with the
    WEBHOOK_SECRET setting (never SECRET_KEY: receivers must hold the signing secret)."""
    from django.conf import settings

    from approvals.integrations.webhooks.signing import post_signed

    url = call.input.get("url") or call.settings.get("webhook_url")
    if not url:
        raise ValueError("no webhook URL: set settings.webhook_url or invoke.input.url")
    if not settings.WEBHOOK_SECRET:
        raise ValueError("no WEBHOOK_SECRET is configured to sign the webhook")
    status = post_signed(
        str(url),
        {
            "instance": call.instance_id,
            "workflow": call.definition_key,
            "state": call.state,
            "context": dict(call.context),
        },
        idempotency_key=call.idempotency_key,
        secret=settings.WEBHOOK_SECRET,
    )
    return {"status": status}
