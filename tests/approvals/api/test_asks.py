"""POST /api/v1/asks/: a program asks a person; decisions with changed arguments; expiry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from approvals.models import Ask, AskPermission, AuditEvent, InstanceStatus, Task
from approvals.services.api_tokens import token_create
from approvals.services.sla import sla_sweep
from tests.approvals.flows import publish, review_flow
from tests.factories import UserFactory

SCHEMA = {
    "type": "object",
    "required": ["order", "amount"],
    "properties": {
        "order": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "maximum": 500},
    },
}


def body(**changes: Any) -> dict[str, Any]:
    return {
        "workflow": "review-action",
        "title": "Refund order 1234",
        "action": {
            "name": "send_refund",
            "arguments": {"order": "1234", "amount": 120},
            "schema": SCHEMA,
        },
        "roles": ["finance"],
        "sla": "PT1H",
        "expires_in": "PT4H",
        "context": "The parcel arrived **damaged**.",
        **changes,
    }


@pytest.fixture
def agent(db: None, finance: User) -> User:
    """A program's account, allowed to ask finance."""
    user = UserFactory(username="bot", first_name="Refund", last_name="Bot")
    permission = AskPermission.objects.create(role=Group.objects.get(name="finance"))
    permission.users.add(user)
    return user


def token_client(user: User, name: str = "refund-bot") -> APIClient:
    _, plaintext = token_create(user=user, name=name, actor=user, now=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def bot(agent: User) -> APIClient:
    return token_client(agent)


def ask(client: APIClient, **changes: Any) -> Any:
    return client.post("/api/v1/asks/", body(**changes), format="json")


def test_an_ask_opens_a_task_for_the_roles_with_its_sla_and_expiry(bot: APIClient) -> None:
    before = timezone.now()
    response = ask(bot)
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["workflow"]["key"] == "review-action"
    assert (data["state"], data["status"], data["title"]) == (
        "review",
        "active",
        "Refund order 1234",
    )
    (task,) = data["open_tasks"]
    assert task["roles"] == ["finance"]
    assert task["decisions"] == ["APPROVE", "APPROVE_WITH_CHANGES", "REJECT"]
    assert data["ask"]["action"] == {
        "name": "send_refund",
        "arguments": {"order": "1234", "amount": 120},
        "schema": SCHEMA,
    }
    assert (data["ask"]["agent"], data["ask"]["on_behalf_of"]) == ("refund-bot", "bot")
    row = Task.objects.get(pk=task["id"])
    assert timedelta(minutes=59) < row.due_at - before < timedelta(minutes=61)
    ask_row = Ask.objects.get(instance_id=data["id"])
    assert (
        timedelta(hours=3, minutes=59) < ask_row.expires_at - before < timedelta(hours=4, minutes=1)
    )
    # GET /instances/{id}/ shows the same request to the asker.
    again = bot.get(f"/api/v1/instances/{data['id']}/").json()
    assert again["open_tasks"] == data["open_tasks"]


def test_the_same_idempotency_key_asks_once(bot: APIClient) -> None:
    first = bot.post("/api/v1/asks/", body(), format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    second = bot.post("/api/v1/asks/", body(), format="json", HTTP_IDEMPOTENCY_KEY="ask-1")
    assert first.status_code == second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]
    assert Ask.objects.count() == 1
    other = bot.post(
        "/api/v1/asks/", body(title="Other"), format="json", HTTP_IDEMPOTENCY_KEY="ask-1"
    )
    assert other.status_code == 409


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"action": None}, "action"),
        ({"action": {"arguments": {}}}, "action.name"),
        ({"action": {"name": "bad name!"}}, "action.name"),
        ({"action": {"name": "x", "arguments": [1]}}, "action.arguments"),
        ({"action": {"name": "x", "schema": {"type": "nonsense"}}}, "action.schema"),
        (
            {"action": {"name": "x", "arguments": {"order": "1", "amount": 900}, "schema": SCHEMA}},
            "action.arguments.amount",
        ),
        ({"roles": []}, "roles"),
        ({"roles": ["nobody"]}, "roles"),
        ({"sla": "soon"}, "sla"),
        ({"expires_in": "P2M"}, "expires_in"),
        ({"expires_in": "P90D"}, "expires_in"),
        ({"context": {"not": "markdown"}}, "context"),
        ({"context": "x" * 20001}, "context"),
        ({"context": "nul \x00"}, "context"),
        ({"workflow": "no-such"}, "workflow"),
        ({"callback_url": "http://169.254.169.254/latest"}, "callback_url"),
    ],
)
def test_bad_asks_are_refused_naming_the_field(
    bot: APIClient, changes: dict[str, Any], field: str
) -> None:
    payload = body(**changes)
    if changes.get("action", 1) is None:
        del payload["action"]
    response = bot.post("/api/v1/asks/", payload, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert Ask.objects.count() == 0
    assert not AuditEvent.objects.exists()


def test_an_action_too_large_is_refused(bot: APIClient, settings) -> None:
    settings.ASK_MAX_ACTION_BYTES = 2000
    response = ask(bot, action={"name": "x", "arguments": {"blob": "y" * 3000}})
    assert response.status_code == 400
    assert "bytes" in response.json()["fields"]["action"][0]


def test_only_roles_the_account_may_ask(bot: APIClient, reviewer: User) -> None:
    response = ask(bot, roles=["finance", "manager"])
    assert response.status_code == 403
    assert "manager" in response.json()["detail"]
    assert Ask.objects.count() == 0


def test_an_account_without_ask_permission_is_refused(finance: User) -> None:
    response = ask(token_client(UserFactory(username="stranger")))
    assert response.status_code == 403
    assert Ask.objects.count() == 0


def test_asks_need_a_token(agent: User) -> None:
    client = APIClient()
    assert client.post("/api/v1/asks/", body(), format="json").status_code == 401
    client.force_login(agent)
    assert client.post("/api/v1/asks/", body(), format="json").status_code == 403


def test_asks_have_a_rate_per_token(agent: User, settings) -> None:
    settings.ASK_RATE = "2/minute"
    bot, other = token_client(agent), token_client(agent, "other-bot")
    assert [ask(bot).status_code for _ in range(3)] == [201, 201, 429]
    assert ask(other).status_code == 201


def test_the_asking_account_cannot_approve_its_own_ask(agent: User) -> None:
    agent.groups.add(Group.objects.get(name="finance"))
    bot = token_client(agent)
    task = ask(bot).json()["open_tasks"][0]
    response = bot.post(
        f"/api/v1/tasks/{task['id']}/decide/", {"decision": "APPROVE"}, format="json"
    )
    assert response.status_code in (403, 404)
    assert Task.objects.get(pk=task["id"]).status == "open"


def test_an_outsider_sees_nothing_of_an_ask(
    bot: APIClient, outsider: User, api: Callable[[User | None], APIClient]
) -> None:
    data = ask(bot).json()
    stranger = api(outsider)
    assert stranger.get(f"/api/v1/instances/{data['id']}/").status_code == 404
    task = data["open_tasks"][0]
    response = stranger.post(
        f"/api/v1/tasks/{task['id']}/decide/", {"decision": "APPROVE"}, format="json"
    )
    assert response.status_code == 404


def decide(client: APIClient, task_id: int, payload: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/tasks/{task_id}/decide/", payload, format="json")


def test_approve_with_changes_records_the_difference(
    bot: APIClient, finance: User, api: Callable[[User | None], APIClient]
) -> None:
    data = ask(bot).json()
    task_id = data["open_tasks"][0]["id"]
    response = decide(
        api(finance),
        task_id,
        {
            "decision": "APPROVE_WITH_CHANGES",
            "comment": "Half of it",
            "data": {"arguments": {"order": "1234", "amount": 60}},
        },
    )
    assert response.status_code == 200, response.json()
    assert response.json()["instance"]["status"] == "completed"
    event = AuditEvent.objects.get(instance_id=data["id"], event="task.decided")
    assert event.data["arguments"] == {"order": "1234", "amount": 60}
    assert event.data["arguments_changes"] == [{"op": "replace", "path": "/amount", "value": 60}]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"decision": "APPROVE_WITH_CHANGES"}, "data.arguments"),
        (
            {
                "decision": "APPROVE_WITH_CHANGES",
                "data": {"arguments": {"order": "1234", "amount": 900}},
            },
            "data.arguments.amount",
        ),
        (
            {"decision": "APPROVE_WITH_CHANGES", "data": {"arguments": {"amount": 9}}},
            "data.arguments.order",
        ),
        (
            {"decision": "APPROVE", "data": {"arguments": {"order": "1", "amount": 1}}},
            "data.arguments",
        ),
    ],
)
def test_changed_arguments_that_break_the_schema_are_refused_with_the_path(
    bot: APIClient,
    finance: User,
    api: Callable[[User | None], APIClient],
    payload: dict[str, Any],
    field: str,
) -> None:
    task_id = ask(bot).json()["open_tasks"][0]["id"]
    response = decide(api(finance), task_id, payload)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"], response.json()
    assert Task.objects.get(pk=task_id).status == "open"


def test_approve_keeps_the_proposed_arguments(
    bot: APIClient, finance: User, api: Callable[[User | None], APIClient]
) -> None:
    data = ask(bot).json()
    decide(api(finance), data["open_tasks"][0]["id"], {"decision": "APPROVE"})
    event = AuditEvent.objects.get(instance_id=data["id"], event="task.decided")
    assert event.data["arguments"] == {"order": "1234", "amount": 120}
    assert "arguments_changes" not in event.data


def test_an_unanswered_ask_times_out(bot: APIClient) -> None:
    data = ask(bot, expires_in="PT1M").json()
    instance_id = data["id"]
    sla_sweep(now=timezone.now() + timedelta(seconds=30))
    assert bot.get(f"/api/v1/instances/{instance_id}/").json()["status"] == "active"
    sla_sweep(now=timezone.now() + timedelta(minutes=2))
    after = bot.get(f"/api/v1/instances/{instance_id}/").json()
    assert (after["state"], after["status"]) == ("timed_out", InstanceStatus.CANCELLED)
    assert after["open_tasks"] == []


def test_another_workflow_can_be_asked_with_its_form_data(agent: User, reviewer: User) -> None:
    publish(review_flow())
    AskPermission.objects.create(role=Group.objects.get(name="manager")).users.add(agent)
    bot = token_client(agent)
    response = bot.post(
        "/api/v1/asks/",
        {"workflow": "review", "context": {"title": "Laptop", "amount": 900}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["workflow"]["key"] == "review"
    assert response.json()["ask"]["action"] is None
    bad = bot.post(
        "/api/v1/asks/", {"workflow": "review", "context": {"amount": "lots"}}, format="json"
    )
    assert bad.status_code == 400
    assert any(name.startswith("context.") for name in bad.json()["fields"])
    roles = bot.post(
        "/api/v1/asks/",
        {"workflow": "review", "roles": ["manager"], "context": {"title": "x", "amount": 1}},
        format="json",
    )
    assert roles.status_code == 400 and "roles" in roles.json()["fields"]


def test_another_workflow_whose_roles_the_account_may_not_ask_is_refused(
    agent: User, reviewer: User
) -> None:
    publish(review_flow())
    response = token_client(agent).post(
        "/api/v1/asks/",
        {"workflow": "review", "context": {"title": "Laptop", "amount": 900}},
        format="json",
    )
    assert response.status_code == 403
    assert Ask.objects.count() == 0


def test_a_callback_url_gets_the_requests_later_events_signed_as_webhooks(
    bot: APIClient, finance: User, api: Callable[[User | None], APIClient]
) -> None:
    from approvals.models import WebhookDelivery, WebhookSubscription

    data = ask(bot, callback_url="https://agent.example/callback").json()
    secret = data["ask"]["callback_secret"]
    assert secret and data["ask"]["callback_url"] == "https://agent.example/callback"
    other = ask(bot).json()  # another ask's events do not go there
    decide(api(finance), other["open_tasks"][0]["id"], {"decision": "APPROVE"})
    assert not WebhookDelivery.objects.exists()
    decide(api(finance), data["open_tasks"][0]["id"], {"decision": "APPROVE"})
    deliveries = WebhookDelivery.objects.filter(instance_id=data["id"])
    assert {"task.decided", "instance.completed"} <= {d.event_type for d in deliveries}
    assert not WebhookDelivery.objects.exclude(instance_id=data["id"]).exists()
    subscription = WebhookSubscription.objects.get(instance_id=data["id"])
    assert (subscription.url, subscription.secret, subscription.is_active) == (
        "https://agent.example/callback",
        secret,
        False,  # the request ended: nothing more will come
    )
    # Without a callback, no secret.
    assert other["ask"]["callback_secret"] is None
