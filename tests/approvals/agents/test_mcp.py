"""The MCP server driven by the SDK's own client over stdio (`manage.py mcp_server`)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.approvals.api.live_asks import SCHEMA, seed_asks
from tests.processes import BASE_DIR, child_env, manage

pytestmark = pytest.mark.slow

DECIDE = """
from django.utils import timezone
from accounts.models import User
from approvals.models import Task
from approvals.services.task_work import task_decide
task = Task.objects.get(instance_id={instance}, status__in=["open", "claimed"])
task_decide(task_id=task.pk, event="APPROVE_WITH_CHANGES", data={{"arguments": {arguments!r}}},
            actor=User.objects.get(username="fred"), now=timezone.now())
"""


def _result(call) -> object:
    assert not call.is_error, call.content
    if call.structured_content is not None:
        content = call.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(call.content[0].text)


def test_the_tools_over_stdio(tmp_path: Path) -> None:
    env = child_env(tmp_path, ASK_WAIT_POLL_SECONDS="1")
    tokens = seed_asks(env)

    async def scenario() -> None:
        params = StdioServerParameters(
            command=str(BASE_DIR / ".venv/bin/python"),
            args=["manage.py", "mcp_server"],
            env={**env, "SIGNOFF_TOKEN": tokens["bot"]},
            cwd=str(BASE_DIR),
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert names == {"request_approval", "get_request_status", "list_my_pending_asks"}
            handle = _result(
                await session.call_tool(
                    "request_approval",
                    {
                        "title": "Refund order 1234",
                        "action": "send_refund",
                        "arguments": {"order": "1234", "amount": 120},
                        "schema": SCHEMA,
                        "roles": ["finance"],
                        "context": "Damaged parcel.",
                        "wait_seconds": 0,
                    },
                )
            )
            assert handle["done"] is False and handle["state"] == "review"
            pending = _result(await session.call_tool("list_my_pending_asks", {}))
            assert [p["id"] for p in pending] == [handle["id"]]
            decided = threading.Timer(
                1,
                lambda: manage(
                    "shell",
                    "-c",
                    DECIDE.format(instance=handle["id"], arguments={"order": "1234", "amount": 80}),
                    env=env,
                ),
            )
            decided.start()
            answer = _result(
                await session.call_tool(
                    "get_request_status", {"request_id": handle["id"], "wait_seconds": 60}
                )
            )
            decided.join()
            assert answer["done"] is True
            assert answer["decision"]["event"] == "APPROVE_WITH_CHANGES"
            assert answer["decision"]["arguments"] == {"order": "1234", "amount": 80}
            assert _result(await session.call_tool("list_my_pending_asks", {})) == []
            refused = await session.call_tool(
                "request_approval",
                {
                    "title": "x",
                    "action": "x",
                    "arguments": {},
                    "roles": ["nobody"],
                    "wait_seconds": 0,
                },
            )
            assert refused.is_error and "No role 'nobody'" in refused.content[0].text
            hidden = await session.call_tool("get_request_status", {"request_id": 999999})
            assert hidden.is_error

    asyncio.run(scenario())


def test_the_command_refuses_a_bad_token(tmp_path: Path) -> None:
    env = child_env(tmp_path)
    seed_asks(env)
    done = manage("mcp_server", "--token", "sgf_nope", env=env)
    assert done.returncode != 0 and "the token is refused" in done.stderr
