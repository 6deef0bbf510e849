"""Callback steps through HTTP: the token handed out by a signed POST to the step's address
and in GET /api/v1/instances/{id}/ to those who may see the request, and the report at
POST /api/v1/callbacks/<token>/success|failure|heartbeat with no other credential."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from approvals.automation.runner import action_execute
from approvals.models import OutboxMessage, WorkflowInstance
from approvals.services.callbacks import waiting_callbacks
from tests.approvals.flows import NOW
from tests.approvals.integrations.webhooks.receiver import receiver
from tests.approvals.services.test_callbacks import callback_flow, start

pytestmark = pytest.mark.django_db
SECRET = "callback-signing-secret"


def run(instance: WorkflowInstance) -> str:
    message = OutboxMessage.objects.filter(instance=instance, topic="action.invoke").latest("pk")
    return action_execute(message_id=message.pk, now=NOW)


@pytest.fixture
def signing(settings):
    settings.WEBHOOK_SECRET = SECRET
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1


def test_the_token_is_posted_signed_and_the_report_moves_the_request(
    requester, signing, time_machine
):
    time_machine.move_to(NOW, tick=False)
    with receiver(SECRET) as hook:
        instance = start(requester, callback_flow(input={"url": hook.url}))
        assert run(instance) == "waiting"
    (received,) = hook.received
    assert received.signature_ok
    body = received.json
    assert body["instance"] == instance.pk and body["state"] == "checking"
    (callback,) = body["callbacks"]
    assert callback["attempt"] == 1

    anonymous = APIClient()
    response = anonymous.post(callback["heartbeat_url"], {}, format="json")
    assert response.status_code == 200 and response.json()["step"] == "waiting"
    response = anonymous.post(
        f"/api/v1/callbacks/{callback['token']}/success", {"output": {"ok": True}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "succeeded" and response.json()["step"] == "done"
    instance.refresh_from_db()
    assert instance.state == "verified" and instance.context["checking"] == {"ok": True}

    again = anonymous.post(callback["success_url"], {}, format="json")
    assert again.status_code == 409
    assert "already reported success" in again.json()["detail"]


def test_a_post_the_receiver_refuses_is_a_failed_attempt_and_its_token_is_closed(
    requester, signing
):
    # Not at a frozen time: compiled statecharts are cached by id and publication time, and
    # SQLite reuses the ids of a rolled-back test, so two publications at one frozen instant
    # would share the other test's chart (its receiver's address).
    with receiver(SECRET, statuses=[500]) as hook:
        instance = start(requester, callback_flow(input={"url": hook.url}))
        assert run(instance) == "retry"
    token = hook.received[0].json["callbacks"][0]["token"]
    response = APIClient().post(f"/api/v1/callbacks/{token}/success", {}, format="json")
    assert response.status_code == 409 and "already closed" in response.json()["detail"]


def test_the_instance_shows_waiting_callbacks_to_those_who_may_see_it(requester, outsider, api):
    instance = start(requester)
    run(instance)
    shown = api(requester).get(f"/api/v1/instances/{instance.pk}/").json()
    (callback,) = shown["callbacks"]
    assert callback["state"] == "checking" and callback["token"]
    assert api(outsider).get(f"/api/v1/instances/{instance.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/callbacks/{token}/approve", {}, 404),
        ("/api/v1/callbacks/AAAAAAAAAAAAAAAAAAAAAA/success", {}, 404),
        ("/api/v1/callbacks/{token}/success", {"output": [1, 2]}, 400),
        ("/api/v1/callbacks/{token}/failure", {}, 400),
        ("/api/v1/callbacks/{token}/failure", {"error": "x" * 2001}, 400),
    ],
)
def test_bad_reports_are_refused_and_change_nothing(requester, path, body, status):
    instance = start(requester)
    run(instance)
    token = _token_of(instance)
    response = APIClient().post(path.format(token=token), body, format="json")
    assert response.status_code == status, response.content
    instance.refresh_from_db()
    assert instance.state == "checking"
    assert instance.callbacks.get().status == "waiting"


def _token_of(instance: WorkflowInstance) -> str:
    return waiting_callbacks(instance.pk)[0]["token"]
