"""Registered actions: the webhook signs with its own secret, never Django's SECRET_KEY."""

from __future__ import annotations

from urllib.error import HTTPError

import pytest

from approvals.actions import ActionCall, action_names, get_action
from approvals.integrations.http import TargetRefused
from approvals.integrations.webhooks.signing import signature
from tests.approvals.integrations.webhooks.receiver import listener, receiver, redirector

LOOPBACK_REFUSED = r"(is|resolves to (127\.0\.0\.1|::1),) a loopback address"


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


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_the_webhook_action_does_not_follow_a_redirect(settings, status: int) -> None:
    settings.WEBHOOK_SECRET = "webhook-action-secret-0123456789"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # both servers listen on 127.0.0.1
    with (
        listener() as internal,
        redirector(internal.url, status) as hop,
        pytest.raises(HTTPError) as refused,
    ):
        get_action("webhook")(call(webhook_url=hop.url))
    assert refused.value.code == status
    assert f"redirect to {internal.url} not followed" in str(refused.value)
    assert len(hop.requests) == 1 and internal.requests == []


def test_the_webhook_action_refuses_a_private_address_when_it_sends(settings) -> None:
    settings.WEBHOOK_SECRET = "webhook-action-secret-0123456789"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    with receiver(settings.WEBHOOK_SECRET) as hook:
        for url in (hook.url, hook.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(TargetRefused, match=LOOPBACK_REFUSED):
                get_action("webhook")(call(webhook_url=url))
        assert hook.received == []
        settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
        assert get_action("webhook")(call(webhook_url=hook.url)) == {"status": 200}
    assert len(hook.received) == 1 and hook.received[0].signature_ok
