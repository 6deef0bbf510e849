"""Registered actions: the webhook signs with its own secret, never Django's SECRET_KEY."""

from __future__ import annotations

import pytest

from approvals.actions import ActionCall, action_names, get_action
from approvals.integrations.webhooks.signing import signature


def call(**settings: str) -> ActionCall:
    return ActionCall(
        instance_id=1,
        definition_key="k",
        state="s",
        context={},
        input={},
        settings=settings,
        idempotency_key="1:1:x",
    )


def test_builtin_actions_are_registered() -> None:
    assert {"notify", "webhook"} <= action_names()


def test_webhook_needs_a_url_and_a_secret(settings) -> None:
    settings.WEBHOOK_SECRET = ""
    with pytest.raises(ValueError, match="no webhook URL"):
        get_action("webhook")(call())
    with pytest.raises(ValueError, match="no WEBHOOK_SECRET"):
        get_action("webhook")(call(webhook_url="http://127.0.0.1:9/hook"))


def test_signature_covers_timestamp_and_body() -> None:
    one = signature("s3cret", "1700000000", b'{"a":1}')
    assert one.startswith("v1=") and len(one) == 3 + 64
    assert one != signature("s3cret", "1700000001", b'{"a":1}')
    assert one != signature("s3cret", "1700000000", b'{"a":2}')
    assert one != signature("other", "1700000000", b'{"a":1}')
