"""The actions every installation has: `notify` and `webhook`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from approvals.actions import ActionCall, register_action
from approvals.integrations.webhooks.signing import post_signed


@register_action("notify")
def notify(call: ActionCall) -> Mapping[str, Any]:
    """Tell the requester (and the definition's watchers) a message; delivered as a
    notification by the outbox."""
    return {"message": str(call.input.get("message", ""))}


@register_action("webhook")
def webhook(call: ActionCall) -> Mapping[str, Any]:
    """POST the instance as JSON to the definition's `settings.webhook_url`, signed with the
    WEBHOOK_SECRET setting (never SECRET_KEY: receivers must hold the signing secret)."""
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
