from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from approvals.models import WorkflowInstance
from approvals.services.api_tokens import token_create
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow, routed_flow


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(settings) -> None:
    # Throttle counts live in a cache that outlives a test, and user ids repeat on SQLite. A
    # private in-memory cache per test: clearing the Redis one would flush the whole Redis
    # database that other tests (and the broker) share.
    settings.CACHES = {
        **settings.CACHES,
        "api": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t"},
    }
    caches["api"].clear()


@pytest.fixture
def api() -> Callable[[User | None], APIClient]:
    """api(user): a client authenticated with a new personal token of `user` (None: anonymous)."""

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            _, plaintext = token_create(
                user=user, name=f"test-{user.pk}-{id(client)}", actor=user, now=timezone.now()
            )
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        return client

    return make


@pytest.fixture
def review(requester: User) -> WorkflowInstance:
    """A request of review_flow waiting for a manager."""
    publish(review_flow())
    return instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=requester,
        now=NOW,
    )


@pytest.fixture
def awaiting_payment(requester: User, reviewer: User, finance: User) -> WorkflowInstance:
    """A request of routed_flow that finance approved: it waits for PAYMENT_RECEIVED."""
    from approvals.services.task_work import task_decide

    publish(routed_flow())
    instance = instance_start(
        definition_key="routed", context={"amount": 500}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=finance, now=NOW)
    instance.refresh_from_db()
    assert instance.state == "awaiting_payment"
    return instance


@pytest.fixture
def integrator(db: None) -> User:
    """An integration account: sends external events and reads every request (as the demo's
    operator role does)."""
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    user = UserFactory(username="ivy", first_name="Ivy", last_name="Integration")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["send_event", "view_workflowinstance"])
    )
    return user
