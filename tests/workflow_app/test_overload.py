"""A saturated database answers 503 with Retry-After (JSON under /api/, a plain page for the
web), never a 500, and nothing is half-written.

The saturation is real: this process's pool shrunk to one connection that another thread holds
(the wait for a connection runs out: psycopg_pool's PoolTimeout), or, without a pool, a role
PostgreSQL lets make no connection at all ("too many connections", as when max_connections is
reached).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from approvals.models import Decision, WorkflowInstance
from approvals.services.api_tokens import token_create
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the pool and PostgreSQL's connection limits exist only on PostgreSQL")


@pytest.fixture
def review(requester: User) -> WorkflowInstance:
    publish(review_flow())
    return instance_start(
        definition_key="review", context={"title": "Desk", "amount": 10}, actor=requester, now=NOW
    )


def token_client(user: User) -> APIClient:
    _, plaintext = token_create(user=user, name="load", actor=user, now=NOW)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def _reset_connections() -> None:
    connections.close_all()
    connection.close_pool()


@contextlib.contextmanager
def pool_exhausted() -> Iterator[None]:
    """The pool of this process holds one connection, taken by another thread meanwhile;
    whoever else asks waits half a second for it, then gets PoolTimeout."""
    options = connection.settings_dict["OPTIONS"]
    saved = options.get("pool")
    _reset_connections()
    options["pool"] = {"min_size": 0, "max_size": 1, "timeout": 0.5}
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            connection.ensure_connection()
            taken.set()
            release.wait(60)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(30), "the holder thread got no connection"
        yield
    finally:
        release.set()
        holder.join(60)
        try:
            _reset_connections()
        finally:
            if saved is None:
                options.pop("pool", None)
            else:
                options["pool"] = saved


def _admin_connection() -> psycopg.Connection:
    settings_dict = connection.settings_dict
    return psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        dbname="postgres",
        autocommit=True,
    )


@contextlib.contextmanager
def connections_refused() -> Iterator[None]:
    """No pool, and a login role that PostgreSQL lets make no connection (CONNECTION LIMIT 0):
    each new connection fails with "too many connections", as at max_connections."""
    role = f"signoff_refused_{uuid.uuid4().hex[:10]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    settings_dict = connection.settings_dict
    saved_user, saved_pool = settings_dict["USER"], settings_dict["OPTIONS"].get("pool")
    _reset_connections()
    settings_dict["OPTIONS"].pop("pool", None)
    settings_dict["USER"] = role
    try:
        yield
    finally:
        connections.close_all()
        settings_dict["USER"] = saved_user
        if saved_pool is not None:
            settings_dict["OPTIONS"]["pool"] = saved_pool
        with _admin_connection() as admin:
            admin.execute(f'DROP ROLE "{role}"')


def assert_busy_json(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "unavailable"
    assert "try again" in body["detail"]


def assert_busy_page(response) -> None:
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    assert "try again" in response.content.decode()


@pytest.mark.parametrize("saturation", [pool_exhausted, connections_refused])
def test_an_api_call_without_a_connection_gets_503_json_and_changes_nothing(
    saturation, review, reviewer
):
    client = token_client(reviewer)
    task_id = review.tasks.get().pk
    with saturation():
        assert_busy_json(client.get("/api/v1/tasks/"))
        assert_busy_json(
            client.post(f"/api/v1/tasks/{task_id}/decide/", {"decision": "APPROVE"}, format="json")
        )
        # Without credentials the answer needs no database: refused as always.
        assert APIClient().get("/api/v1/tasks/").status_code == 401
    assert not Decision.objects.exists()
    assert review.tasks.get().status == "open"
    assert client.get("/api/v1/tasks/").status_code == 200  # served again once there is room


@pytest.mark.parametrize("saturation", [pool_exhausted, connections_refused])
def test_a_page_without_a_connection_is_a_plain_503_page(saturation, review, reviewer):
    browser = Client()
    browser.force_login(reviewer)
    task_id = review.tasks.get().pk
    with saturation():
        assert_busy_page(browser.get("/inbox/"))
        assert_busy_page(browser.post(f"/tasks/{task_id}/decide/", {"decision": "APPROVE"}))
    assert not Decision.objects.exists()
    assert browser.get("/inbox/").status_code == 200
