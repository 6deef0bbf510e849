"""Outgoing webhooks: written with the change, signed, retried by the sweep, logged."""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings

from approvals.integrations.webhooks.services import (
    backoff,
    webhook_attempt,
    webhook_due,
    webhook_redeliver,
)
from approvals.integrations.webhooks.signing import post_signed, signature
from approvals.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from approvals.services.errors import NotAllowed
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.integrations.webhooks.receiver import listener, receiver, redirector
from tests.approvals.test_actions import LOOPBACK_REFUSED

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789abcdef"
ALL_TYPES = [
    "instance.started",
    "instance.state_changed",
    "task.created",
    "task.decided",
    "task.escalated",
    "instance.completed",
]


def subscribe(url: str, types: list[str] | None = None, **fields) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        name="ERP", url=url, secret=SECRET, event_types=types or ALL_TYPES, **fields
    )


def start(requester, **context):
    return instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900, **context},
        actor=requester,
        now=NOW,
    )


@pytest.fixture(autouse=True)
def _receivers_listen_on_loopback(settings) -> None:
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True


@pytest.fixture
def flow() -> None:
    publish(review_flow())


def test_a_change_writes_one_delivery_per_interested_subscription(flow, requester, reviewer):
    everything = subscribe("http://127.0.0.1:9/all")
    only_started = subscribe("http://127.0.0.1:9/started", ["instance.started"])
    other_workflow = subscribe("http://127.0.0.1:9/other", workflow_keys=["purchase-order"])
    subscribe("http://127.0.0.1:9/off", is_active=False)

    instance = start(requester)
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=reviewer, now=NOW)

    rows = WebhookDelivery.objects.order_by("id")
    assert [d.event_type for d in rows.filter(subscription=everything)] == [
        "instance.started",
        "task.created",
        "task.decided",
        "instance.state_changed",
        "instance.completed",
    ]
    assert [d.event_type for d in rows.filter(subscription=only_started)] == ["instance.started"]
    assert not rows.filter(subscription=other_workflow).exists()
    assert rows.count() == 6
    delivery = rows.get(subscription=everything, event_type="task.decided")
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at == NOW
    payload = delivery.payload
    assert payload["type"] == "task.decided" and payload["id"] == delivery.event_id
    assert payload["instance"]["id"] == instance.pk
    assert payload["instance"]["workflow"] == "review"
    assert payload["instance"]["url"].endswith(f"/api/v1/instances/{instance.pk}/")
    assert payload["data"]["decision"] == "APPROVE"


def test_a_rolled_back_change_leaves_no_delivery(flow, requester):
    subscribe("http://127.0.0.1:9/all")
    with pytest.raises(RuntimeError), transaction.atomic():
        start(requester)
        raise RuntimeError("the caller's transaction fails after the change")
    assert not WebhookDelivery.objects.exists()


def test_the_receiver_verifies_the_signature(flow, requester):
    with receiver(SECRET) as hook:
        subscribe(hook.url, ["instance.started"])
        instance = start(requester)
        delivery = WebhookDelivery.objects.get()
        logged = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)

    assert logged is not None and logged.succeeded and logged.status_code == 200
    (request,) = hook.received
    assert request.signature_ok
    assert request.headers["X-Signoff-Event"] == "instance.started"
    assert request.headers["X-Signoff-Event-Id"] == delivery.event_id
    assert request.headers["Idempotency-Key"] == delivery.event_id
    assert request.json["instance"]["id"] == instance.pk
    assert request.json["data"] == {"state": "review"}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at == NOW
    assert delivery.last_response == "thanks"


def test_a_wrong_secret_fails_verification(flow, requester):
    with receiver("another-secret-entirely") as hook:
        subscribe(hook.url, ["instance.started"])
        start(requester)
        delivery = WebhookDelivery.objects.get()
        logged = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
    assert hook.received[0].signature_ok is False
    assert logged.status_code == 401 and not logged.succeeded


def test_fails_twice_then_succeeds_and_the_log_shows_three_attempts(flow, requester):
    with receiver(SECRET, statuses=[500, 503, 200]) as hook:
        subscribe(hook.url, ["instance.started"])
        start(requester)
        delivery = WebhookDelivery.objects.get()

        first = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
        assert first.status_code == 500 and not first.succeeded
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        assert delivery.next_attempt_at == NOW + backoff(1) == NOW + timedelta(seconds=30)
        # Not due yet: the sweep hands out nothing.
        assert webhook_due(now=NOW + timedelta(seconds=29)) == []

        retry_at = NOW + timedelta(seconds=30)
        assert webhook_due(now=retry_at) == [(delivery.pk, 2)]
        second = webhook_attempt(delivery_id=delivery.pk, attempt=2, now=retry_at)
        assert second.status_code == 503
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == retry_at + timedelta(minutes=2)

        retry_at += timedelta(minutes=2)
        assert webhook_due(now=retry_at) == [(delivery.pk, 3)]
        third = webhook_attempt(delivery_id=delivery.pk, attempt=3, now=retry_at)
        assert third.succeeded

    assert len(hook.received) == 3
    assert all(r.signature_ok for r in hook.received)
    assert {r.json["id"] for r in hook.received} == {delivery.event_id}
    assert [r.headers["X-Signoff-Attempt"] for r in hook.received] == ["1", "2", "3"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DELIVERED, 3)
    log = list(delivery.attempt_log.values_list("number", "status_code", "succeeded"))
    assert log == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert webhook_due(now=retry_at + timedelta(days=1)) == []


def test_the_same_attempt_dispatched_twice_is_sent_once(flow, requester):
    with receiver(SECRET) as hook:
        subscribe(hook.url, ["instance.started"])
        start(requester)
        delivery = WebhookDelivery.objects.get()
        assert webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW) is not None
        assert webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW) is None
    assert len(hook.received) == 1


def test_a_dispatched_row_is_not_handed_out_again_until_its_lease_ends(flow, requester):
    subscribe("http://127.0.0.1:9/x", ["instance.started"])
    start(requester)
    delivery = WebhookDelivery.objects.get()
    assert webhook_due(now=NOW) == [(delivery.pk, 1)]
    assert webhook_due(now=NOW + timedelta(minutes=1)) == []
    # The worker never ran it (a lost message): the sweep hands it out again later.
    assert webhook_due(now=NOW + timedelta(minutes=6)) == [(delivery.pk, 1)]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@override_settings(WEBHOOK_MAX_ATTEMPTS=2)
def test_unreachable_receiver_gives_up_after_max_attempts_then_redelivers(
    flow, requester, admin_user, outsider
):
    subscription = subscribe(f"http://127.0.0.1:{_closed_port()}/gone", ["instance.started"])
    start(requester)
    delivery = WebhookDelivery.objects.get()
    first = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
    assert first.status_code is None and "Connection refused" in first.error
    webhook_attempt(delivery_id=delivery.pk, attempt=2, now=NOW + timedelta(seconds=30))
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.next_attempt_at is None
    assert webhook_due(now=NOW + timedelta(days=1)) == []

    with pytest.raises(NotAllowed):
        webhook_redeliver(delivery_ids=[delivery.pk], actor=outsider, now=NOW)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED

    with receiver(SECRET) as hook:
        subscription.url = hook.url
        subscription.save()
        later = NOW + timedelta(hours=1)
        assert webhook_redeliver(delivery_ids=[delivery.pk], actor=admin_user, now=later) == 1
        assert webhook_due(now=later) == [(delivery.pk, 3)]
        assert webhook_attempt(delivery_id=delivery.pk, attempt=3, now=later).succeeded
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert list(delivery.attempt_log.values_list("number", "succeeded")) == [
        (1, False),
        (2, False),
        (3, True),
    ]


def test_a_redirect_is_a_failure_not_followed(flow, requester):
    with listener() as internal, redirector(internal.url) as hop:
        subscribe(hop.url, ["instance.started"])
        start(requester)
        delivery = WebhookDelivery.objects.get()
        logged = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
    assert logged.status_code == 302 and not logged.succeeded
    assert f"HTTP 302 Found: redirect to {internal.url} not followed" in logged.error
    assert len(hop.requests) == 1 and internal.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_receiver_is_refused_when_the_post_is_made(flow, requester, settings, host):
    """Saved before the policy, or under a name that resolved elsewhere when it was saved:
    the address is checked again when the POST is made, on the address connected to."""
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    with receiver(SECRET) as hook:
        subscribe(hook.url.replace("127.0.0.1", host), ["instance.started"])
        start(requester)
        delivery = WebhookDelivery.objects.get()
        logged = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
    assert hook.received == []
    assert logged.status_code is None and not logged.succeeded
    assert re.search(rf"^not sent: {host} {LOOPBACK_REFUSED}", logged.error), logged.error
    assert "ALLOW_PRIVATE_WEBHOOK_TARGETS" in logged.error
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING  # retried as any failure


def test_after_commit_a_worker_delivers_it(flow, requester, django_capture_on_commit_callbacks):
    from workflow_app.celery import app

    app.conf.task_always_eager = True
    try:
        with receiver(SECRET) as hook:
            subscribe(hook.url, ["instance.started", "task.created"])
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                start(requester)
            # One dispatch for both deliveries (other subscribers add callbacks of their own).
            assert len([c for c in callbacks if "deliver_webhook" in repr(c)]) == 1
    finally:
        app.conf.task_always_eager = False
    assert sorted(r.json["type"] for r in hook.received) == ["instance.started", "task.created"]
    assert all(r.signature_ok for r in hook.received)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_the_existing_signing_helpers_still_work():
    body = b'{"a":1}'
    assert signature("s", "1700000000", body).startswith("v1=")
    with receiver("s3cret-for-post-signed") as hook:
        status = post_signed(
            hook.url, {"a": 1}, idempotency_key="k", secret="s3cret-for-post-signed"
        )
    assert status == 200 and hook.received[0].signature_ok
    assert hook.received[0].headers["Idempotency-Key"] == "k"


def test_a_subscription_switched_off_after_the_event_sends_nothing(flow, requester):
    with receiver(SECRET) as hook:
        subscription = subscribe(hook.url, ["instance.started"])
        start(requester)
        subscription.is_active = False
        subscription.save()
        delivery = WebhookDelivery.objects.get()
        logged = webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)
    assert hook.received == []
    assert "switched off" in logged.error
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
