"""Registered actions: the webhook signs with its own secret, never Django's SECRET_KEY."""

from __future__ import annotations

from urllib.error import HTTPError

import pytest

from approvals.actions import ActionCall, PermanentError, action_names, get_action
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


def test_webhook_needs_a_url_and_a_secret_and_says_what_to_do(settings) -> None:
    """Configuration missing: no attempt can succeed until someone acts, so it is permanent."""
    settings.WEBHOOK_SECRET = ""
    with pytest.raises(PermanentError, match="no address") as no_url:
        get_action("webhook")(call())
    assert "settings.webhook_url" in no_url.value.advice
    with pytest.raises(PermanentError, match="no WEBHOOK_SECRET is configured") as no_secret:
        get_action("webhook")(call(webhook_url="http://127.0.0.1:9/hook"))
    assert no_secret.value.advice.startswith("set WEBHOOK_SECRET and restart the worker")


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_refusal_from_the_receiver_is_permanent(settings, status) -> None:
    settings.WEBHOOK_SECRET = "s3cret"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1
    refusal = f"refused the webhook: HTTP {status}"
    with (
        receiver("s3cret", statuses=[status]) as target,
        pytest.raises(PermanentError, match=refusal),
    ):
        get_action("webhook")(call(webhook_url=target.url))
    assert len(target.received) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_a_passing_failure_of_the_receiver_is_retried(settings, status) -> None:
    settings.WEBHOOK_SECRET = "s3cret"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1
    with (
        receiver("s3cret", statuses=[status]) as target,
        pytest.raises(HTTPError) as exc,
    ):
        get_action("webhook")(call(webhook_url=target.url))
    assert not isinstance(exc.value, PermanentError) and exc.value.code == status


def test_a_webhook_the_receiver_takes_returns_its_status(settings) -> None:
    settings.WEBHOOK_SECRET = "s3cret"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1
    with receiver("s3cret") as target:
        assert get_action("webhook")(call(webhook_url=target.url)) == {"status": 200}
    assert target.received[0].signature_ok


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
        pytest.raises(PermanentError) as refused,
    ):
        get_action("webhook")(call(webhook_url=hop.url))
    # A redirect is the receiver's configuration: the step goes to a person at once.
    assert f"redirect (HTTP {status})" in str(refused.value)
    assert "use the address the receiver redirects to" in refused.value.advice
    cause = refused.value.__cause__
    assert cause.code == status and f"redirect to {internal.url} not followed" in str(cause)
    assert len(hop.requests) == 1 and internal.requests == []


def test_the_webhook_action_refuses_a_private_address_when_it_sends(settings) -> None:
    settings.WEBHOOK_SECRET = "webhook-action-secret-0123456789"
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    with receiver(settings.WEBHOOK_SECRET) as hook:
        for url in (hook.url, hook.url.replace("127.0.0.1", "localhost")):
            with pytest.raises(PermanentError, match=LOOPBACK_REFUSED) as refused:
                get_action("webhook")(call(webhook_url=url))
            assert isinstance(refused.value.__cause__, TargetRefused)
            assert "ALLOW_PRIVATE_WEBHOOK_TARGETS" in refused.value.advice
        assert hook.received == []
        settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
        assert get_action("webhook")(call(webhook_url=hook.url)) == {"status": 200}
    assert len(hook.received) == 1 and hook.received[0].signature_ok
