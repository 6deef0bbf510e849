"""The actions every installation has: `notify` and `webhook`."""

from __future__ import annotations

import urllib.error
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from approvals.actions import ActionCall, PermanentError, register_action
from approvals.integrations.http import RedirectRefused, TargetRefused
from approvals.integrations.webhooks.signing import post_signed
from approvals.sensitive import masked

# Answers that say the receiver refuses this request as it is: sending it again cannot help.
# 408 (timeout), 425 (too early) and 429 (slow down) are passing, and retried.
PASSING_4XX = frozenset({408, 425, 429})


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
        raise PermanentError(
            "the webhook has no address to post to",
            advice="set settings.webhook_url in the workflow (or input.url on this step), "
            "publish it, then retry the step",
        )
    if not settings.WEBHOOK_SECRET:
        raise PermanentError(
            "the webhook cannot be signed: no WEBHOOK_SECRET is configured",
            advice="set WEBHOOK_SECRET and restart the worker, then retry the step",
        )
    try:
        status = post_signed(
            str(url),
            {
                "instance": call.instance_id,
                "workflow": call.definition_key,
                "state": call.state,
                "context": masked(dict(call.context), call.sensitive),
                # The request's callback steps waiting for a report, with their task tokens.
                "callbacks": list(call.callbacks),
            },
            idempotency_key=call.idempotency_key,
            secret=settings.WEBHOOK_SECRET,
        )
    except TargetRefused as exc:
        raise PermanentError(
            f"{url} is not an address webhooks may be sent to: {exc}",
            advice="point the webhook at a public address (or set ALLOW_PRIVATE_WEBHOOK_TARGETS "
            "for a receiver on your own network), then retry the step",
        ) from exc
    except RedirectRefused as exc:
        raise PermanentError(
            f"{url} answered with a redirect (HTTP {exc.code}), which webhooks never follow",
            advice="use the address the receiver redirects to, then retry the step",
        ) from exc
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in PASSING_4XX:
            raise PermanentError(
                f"{url} refused the webhook: HTTP {exc.code} {exc.reason}",
                advice="check the receiver's address, its signing secret and what it "
                "expects, then retry the step",
            ) from exc
        raise
    return {"status": status}
