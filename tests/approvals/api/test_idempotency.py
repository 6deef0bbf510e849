"""Idempotency-Key: retries replay the first answer; another body with the same key is 409."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.api.idempotency import purge_expired
from approvals.models import AuditEvent, IdempotencyRecord, WorkflowInstance
from tests.approvals.flows import publish, review_flow

pytestmark = pytest.mark.django_db

START = "/api/v1/workflows/review/instances/"
BODY = {"context": {"title": "Laptop", "amount": 900}}


@pytest.fixture
def flow() -> None:
    publish(review_flow())


def test_same_key_and_body_return_the_same_instance_once(api, flow, requester):
    client = api(requester)
    first = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert WorkflowInstance.objects.count() == 1
    # A new key is a new request.
    other = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="order-43")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_same_key_with_another_body_is_409(api, flow, requester):
    client = api(requester)
    client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    changed = {"context": {"title": "Laptop", "amount": 901}}
    response = client.post(START, changed, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert WorkflowInstance.objects.count() == 1


def test_keys_are_per_user_and_per_endpoint(api, flow, requester, reviewer):
    api(requester).post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = api(reviewer).post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert response.status_code == 201
    assert WorkflowInstance.objects.count() == 2


def test_a_refused_request_is_not_stored_so_the_corrected_retry_runs(api, flow, requester):
    client = api(requester)
    bad = client.post(
        START, {"context": {"title": "x"}}, format="json", HTTP_IDEMPOTENCY_KEY="fix-me"
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="fix-me")
    assert good.status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_malformed_keys_are_400(api, flow, requester, key):
    response = api(requester).post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]
    assert not WorkflowInstance.objects.exists()


def test_event_retry_does_not_send_the_event_twice(api, awaiting_payment, integrator):
    client = api(integrator)
    url = f"/api/v1/instances/{awaiting_payment.pk}/events/"
    body = {"event": "PAYMENT_RECEIVED", "data": {"amount": 500}}
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="pay-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.json()["state"] == "paid"
    assert (
        AuditEvent.objects.filter(
            instance=awaiting_payment, event="transition", to_state="paid"
        ).count()
        == 1
    )
    # Without the key, the same event again is refused: the request has moved on.
    assert client.post(url, body, format="json").status_code == 409


def test_decision_retry_replays_instead_of_409(api, review, reviewer):
    task = review.tasks.get()
    client = api(reviewer)
    url = f"/api/v1/tasks/{task.pk}/decide/"
    first = client.post(url, {"decision": "APPROVE"}, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    again = client.post(url, {"decision": "APPROVE"}, format="json", HTTP_IDEMPOTENCY_KEY="d1")
    assert first.status_code == again.status_code == 200
    assert again.json()["instance"]["state"] == "approved"


def test_expired_keys_are_free_again_and_purged(api, flow, requester, settings):
    client = api(requester)
    first = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = client.post(START, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 201 and again.json()["id"] != first.json()["id"]
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert purge_expired(now=timezone.now()) == 1
    assert not IdempotencyRecord.objects.exists()
