"""A real Daphne with a program allowed to ask finance, for the tests of waiting, the client,
the MCP server and bench/asks.py: tokens of the program (`bot`), of a finance reviewer
(`fred`) and of an outsider (`otto`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.processes import manage, migrate

SEED = """
import json
from django.contrib.auth.models import Group
from django.utils import timezone
from approvals.models import AskPermission
from approvals.services.api_tokens import token_create
from tests.factories import GroupFactory, UserFactory
finance = GroupFactory(name="finance")
fred = UserFactory(username="fred", first_name="Fred", last_name="Finance", groups=[finance])
bot = UserFactory(username="bot", first_name="Refund", last_name="Bot")
otto = UserFactory(username="otto", first_name="Otto", last_name="Outsider")
AskPermission.objects.create(role=finance).users.add(bot)
tokens = {}
for user, name in ((bot, "refund-bot"), (fred, "fred-cli"), (otto, "otto-cli")):
    tokens[user.username] = token_create(user=user, name=name, actor=user, now=timezone.now())[1]
print("TOKENS=" + json.dumps(tokens))
"""

SCHEMA = {
    "type": "object",
    "required": ["order", "amount"],
    "properties": {
        "order": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "maximum": 500},
    },
}


def seed_asks(env: dict[str, str]) -> dict[str, str]:
    migrate(env)
    done = manage("shell", "-c", SEED, env=env)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("TOKENS="))
    return json.loads(line.removeprefix("TOKENS="))


def call(
    base: str, method: str, path: str, token: str | None, body: Any = None, timeout: float = 90
) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def refund_body(**changes: Any) -> dict[str, Any]:
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
