"""Simultaneous API calls on real PostgreSQL row locks: one wins, nothing is done twice."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.backends.signals import connection_created

from approvals.models import AuditEvent, Decision, WorkflowInstance
from approvals.services.audit import verify_instances
from tests.approvals.flows import publish, review_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

CALLERS = 6
DECIDERS = 16


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks are real only on PostgreSQL")


def _together(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls in threads released at the same moment; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_simultaneous_events_on_one_instance_one_wins(api, awaiting_payment, integrator):
    clients = [api(integrator) for _ in range(2)]
    url = f"/api/v1/instances/{awaiting_payment.pk}/events/"
    body = {"event": "PAYMENT_RECEIVED", "data": {"amount": 500}}
    responses = _together([lambda c=c: c.post(url, body, format="json") for c in clients])
    assert sorted(r.status_code for r in responses) == [200, 409]
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["current_state"] == "paid" and refused["accepted_events"] == []
    instance = WorkflowInstance.objects.get(pk=awaiting_payment.pk)
    assert (instance.state, instance.status) == ("paid", "completed")
    assert (
        AuditEvent.objects.filter(instance=instance, to_state="paid", event="transition").count()
        == 1
    )
    assert list(verify_instances([instance])) == []


def test_concurrent_retries_with_one_key_make_one_instance(api, requester):
    publish(review_flow())
    clients = [api(requester) for _ in range(CALLERS)]
    body = {"context": {"title": "Laptop", "amount": 900}}
    responses = _together(
        [
            lambda c=c: c.post(
                "/api/v1/workflows/review/instances/",
                body,
                format="json",
                HTTP_IDEMPOTENCY_KEY="po-7",
            )
            for c in clients
        ]
    )
    assert [r.status_code for r in responses] == [201] * CALLERS
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == CALLERS - 1
    assert WorkflowInstance.objects.count() == 1


def test_simultaneous_decisions_one_wins_the_others_told_who(api, requester):
    publish(review_flow())
    managers = [
        UserFactory(username=f"m{i}", groups=[GroupFactory(name="manager")]) for i in range(CALLERS)
    ]
    client = api(requester)
    instance_id = client.post(
        "/api/v1/workflows/review/instances/",
        {"context": {"title": "Desk", "amount": 10}},
        format="json",
    ).json()["id"]
    task_id = WorkflowInstance.objects.get(pk=instance_id).tasks.get().pk
    clients = [api(m) for m in managers]
    responses = _together(
        [
            lambda c=c: c.post(
                f"/api/v1/tasks/{task_id}/decide/", {"decision": "APPROVE"}, format="json"
            )
            for c in clients
        ]
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * (CALLERS - 1)
    winner = Decision.objects.get().actor
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "already_decided"
            assert f"already decided by {winner}" in response.json()["detail"]


def test_sixteen_deciders_share_the_bounded_pool_and_every_loser_is_told_who_won(api, requester):
    """More deciders at once than the process may hold connections: they wait their turn for
    one (the pool), nobody gets a 500, and no more connections are opened than the bound."""
    assert settings.DATABASE_POOL_SIZE < DECIDERS
    publish(review_flow())
    managers = [
        UserFactory(username=f"d{i}", groups=[GroupFactory(name="manager")])
        for i in range(DECIDERS)
    ]
    instance_id = (
        api(requester)
        .post(
            "/api/v1/workflows/review/instances/",
            {"context": {"title": "Desk", "amount": 10}},
            format="json",
        )
        .json()["id"]
    )
    task_id = WorkflowInstance.objects.get(pk=instance_id).tasks.get().pk
    clients = [api(m) for m in managers]
    backends: set[int] = set()
    lock = threading.Lock()

    def opened(sender: object, connection: object, **kwargs: object) -> None:
        with lock:
            backends.add(connection.connection.info.backend_pid)

    connection_created.connect(opened, weak=False, dispatch_uid="count-backends")
    try:
        responses = _together(
            [
                lambda c=c: c.post(
                    f"/api/v1/tasks/{task_id}/decide/", {"decision": "APPROVE"}, format="json"
                )
                for c in clients
            ]
        )
    finally:
        connection_created.disconnect(dispatch_uid="count-backends")
    assert sorted(r.status_code for r in responses) == [200] + [409] * (DECIDERS - 1)
    winner = Decision.objects.get().actor
    for response in responses:
        if response.status_code == 409:
            assert f"already decided by {winner}" in response.json()["detail"]
    assert 0 < len(backends) <= settings.DATABASE_POOL_SIZE
    instance = WorkflowInstance.objects.get(pk=instance_id)
    assert (instance.state, instance.status) == ("approved", "completed")
    assert list(verify_instances([instance])) == []


def test_simultaneous_starts_with_one_business_key_one_wins_the_others_told_why(api, requester):
    publish(review_flow())
    clients = [api(requester) for _ in range(CALLERS)]
    responses = _together(
        [
            lambda c=c, n=n: c.post(
                "/api/v1/workflows/review/instances/",
                {"context": {"title": f"Laptop {n}", "amount": 900}, "business_key": "PO-API-1"},
                format="json",
            )
            for n, c in enumerate(clients)
        ]
    )
    assert sorted(r.status_code for r in responses) == [201] + [400] * (CALLERS - 1)
    for response in responses:
        if response.status_code == 400:
            body = response.json()
            assert body["code"] == "invalid"
            assert body["fields"] == {
                "business_key": [
                    "Another request of this workflow already has the reference 'PO-API-1'."
                ]
            }
    assert WorkflowInstance.objects.filter(business_key="PO-API-1").count() == 1
    assert AuditEvent.objects.filter(event="instance.started").count() == 1
