"""Asks for tests: a program's account allowed to ask finance, its token, one ask."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from approvals.models import ApiToken, AskPermission, WorkflowInstance
from approvals.services.api_tokens import token_create
from approvals.services.asks import ask_create
from tests.factories import UserFactory

SCHEMA = {
    "type": "object",
    "required": ["order", "amount"],
    "properties": {
        "order": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "maximum": 500},
    },
}


def agent_account(*roles: str, username: str = "bot") -> User:
    """A program's account allowed to ask these roles (which must exist)."""
    user = UserFactory(username=username, first_name="Refund", last_name="Bot")
    for role in roles:
        permission, _ = AskPermission.objects.get_or_create(role=Group.objects.get(name=role))
        permission.users.add(user)
    return user


def agent_token(user: User, name: str = "refund-bot") -> tuple[ApiToken, str]:
    return token_create(user=user, name=name, actor=user, now=timezone.now())


def refund_ask(token: ApiToken, **changes: Any) -> WorkflowInstance:
    fields: dict[str, Any] = {
        "workflow": "review-action",
        "title": "Refund order 1234",
        "action": {
            "name": "send_refund",
            "arguments": {"order": "1234", "amount": 120, "note": {"reason": "damaged"}},
            "schema": SCHEMA,
        },
        "roles": ["finance"],
        "sla": "PT1H",
        "expires_in": "PT4H",
        "context": "The parcel arrived **damaged**.",
        **changes,
    }
    return ask_create(token=token, now=timezone.now(), **fields)
