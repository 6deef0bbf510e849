"""Subscriptions and deliveries in the admin: validation, the attempt log, redelivery."""

from __future__ import annotations

import pytest

from approvals.integrations.webhooks.services import webhook_attempt
from approvals.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.integrations.webhooks.receiver import receiver

pytestmark = pytest.mark.django_db

SECRET = "whsec-admin-0123456789abcdef"


def test_add_a_subscription_limited_to_a_workflow(client, admin_user):
    publish(review_flow())
    client.force_login(admin_user)
    form = client.get("/admin/approvals/webhooksubscription/add/")
    assert form.status_code == 200
    html = form.content.decode()
    assert 'value="task.escalated"' in html and 'value="review"' in html
    response = client.post(
        "/admin/approvals/webhooksubscription/add/",
        {
            "name": "ERP",
            "url": "https://erp.example.com/hooks",
            "secret": SECRET,
            "event_types": ["task.decided", "instance.completed"],
            "workflow_keys": ["review"],
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    subscription = WebhookSubscription.objects.get()
    assert subscription.event_types == ["task.decided", "instance.completed"]
    assert subscription.workflow_keys == ["review"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://example.com/x", "Use an http:// or https:// URL."),
        ("url", "not a url", "Enter a valid URL."),
        ("secret", "short", "Use at least 16 characters"),
        ("event_types", "instance.exploded", "Select a valid choice."),
    ],
)
def test_bad_subscriptions_are_refused_with_a_message(client, admin_user, field, value, message):
    client.force_login(admin_user)
    data = {
        "name": "ERP",
        "url": "https://erp.example.com/hooks",
        "secret": SECRET,
        "event_types": ["task.decided"],
        "is_active": "on",
    }
    data[field] = value
    response = client.post("/admin/approvals/webhooksubscription/add/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WebhookSubscription.objects.exists()


POLICY = "webhook targets must be public addresses"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.5/hooks", "10.0.0.5 is a private address"),
        ("http://[::ffff:127.0.0.1]:8080/hooks", "is a loopback address (127.0.0.1)"),
        ("http://localhost:8080/hooks", "localhost resolves to"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata"),
    ],
)
def test_a_private_receiver_is_refused_when_saved(client, admin_user, settings, url, message):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    client.force_login(admin_user)
    data = {
        "name": "ERP",
        "url": url,
        "secret": SECRET,
        "event_types": ["task.decided"],
        "is_active": "on",
    }
    response = client.post("/admin/approvals/webhooksubscription/add/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html and POLICY in html
    assert not WebhookSubscription.objects.exists()


def test_allowing_private_receivers_still_refuses_cloud_metadata(client, admin_user, settings):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    client.force_login(admin_user)
    data = {"name": "ERP", "secret": SECRET, "event_types": ["task.decided"], "is_active": "on"}
    refused = client.post(
        "/admin/approvals/webhooksubscription/add/",
        {**data, "url": "http://[fd00:ec2::254]/latest/"},
    )
    assert refused.status_code == 200 and "cloud metadata address" in refused.content.decode()
    saved = client.post(
        "/admin/approvals/webhooksubscription/add/", {**data, "url": "http://10.0.0.5/hooks"}
    )
    assert saved.status_code == 302
    assert WebhookSubscription.objects.get().url == "http://10.0.0.5/hooks"


def test_delivery_page_shows_the_log_and_redeliver_sends_again(
    client, admin_user, requester, settings
):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1
    publish(review_flow())
    with receiver(SECRET, statuses=[500, 200]) as hook:
        WebhookSubscription.objects.create(
            name="ERP", url=hook.url, secret=SECRET, event_types=["instance.started"]
        )
        instance_start(
            definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
        )
        delivery = WebhookDelivery.objects.get()
        webhook_attempt(delivery_id=delivery.pk, attempt=1, now=NOW)

        client.force_login(admin_user)
        page = client.get(f"/admin/approvals/webhookdelivery/{delivery.pk}/change/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "attempt log" in html.lower() and "receiver says no" in html and "500" in html

        from workflow_app.celery import app

        app.conf.task_always_eager = True
        try:
            with pytest.MonkeyPatch.context() as mp:
                # The admin's transaction commits at the end of the request in real life; the
                # test transaction never does, so run on_commit callbacks at once.
                mp.setattr("django.db.transaction.on_commit", lambda func, **kw: func())
                response = client.post(
                    "/admin/approvals/webhookdelivery/",
                    {"action": "redeliver", "_selected_action": [delivery.pk]},
                    follow=True,
                )
        finally:
            app.conf.task_always_eager = False
    assert "Queued 1 delivery" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    assert len(hook.received) == 2


def test_staff_without_permission_cannot_see_deliveries(client, reviewer):
    reviewer.is_staff = True
    reviewer.save()
    client.force_login(reviewer)
    assert client.get("/admin/approvals/webhookdelivery/").status_code == 403
    assert client.get("/admin/approvals/apitoken/").status_code == 403
