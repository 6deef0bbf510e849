"""An MCP server (the official `mcp` SDK) with the tools an agent needs to ask a person:
`request_approval`, `get_request_status`, `list_my_pending_asks` (docs/agents.md).

`python manage.py mcp_server` runs it over stdio (the agent's host starts it) or, with
`--transport streamable-http`, on its own port. It acts as the account of one API token
(`--token` or SIGNOFF_TOKEN), through the same services and checks as POST /api/v1/asks/:
the roles the account may ask, the size limits, the account never approving its own ask.
Tools are plain functions; the SDK runs each in a worker thread, so a blocking wait reads
the request every ASK_WAIT_POLL_SECONDS without holding a connection in between.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from approvals.api.waiting import wait_answer
from approvals.models import ApiToken, Ask, WorkflowInstance
from approvals.permissions import can_view_instance
from approvals.services.api_tokens import looks_like_token, token_hash
from approvals.services.asks import ask_create
from approvals.services.errors import WorkflowError

INSTRUCTIONS = (
    "Ask a person to approve an action before you take it. request_approval proposes the "
    "action (a name and JSON arguments) to the roles named; by default it waits until a "
    "person decides (or the ask times out) and returns the decision with the approved "
    "arguments, which the reviewer may have edited: act on those, never on your own. With "
    "wait_seconds=0 it returns a handle at once; follow it with get_request_status."
)


def token_for(plaintext: str) -> ApiToken:
    """The live token, or a clear refusal."""
    if not looks_like_token(plaintext):
        raise ValueError("not a Signoff API token (sgf_...)")
    now = timezone.now()
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(plaintext), revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if token is None or not token.user.is_active:
        raise ValueError("invalid, expired or revoked token")
    return token


def build_server(plaintext_token: str) -> MCPServer:
    """The MCP server acting as this token's account (checked at each call: a token revoked
    meanwhile stops working at once)."""
    server = MCPServer(name="signoff", instructions=INSTRUCTIONS)

    def current_token() -> ApiToken:
        close_old_connections()
        try:
            return token_for(plaintext_token)
        except ValueError as exc:
            raise ToolError(f"Signoff refused the token: {exc}") from None

    @server.tool()
    def request_approval(
        title: str,
        action: str,
        arguments: dict[str, Any],
        roles: list[str],
        context: str = "",
        schema: dict[str, Any] | None = None,
        sla: str | None = None,
        expires_in: str = "P1D",
        wait_seconds: int = 3600,
    ) -> dict[str, Any]:
        """Propose an action to the people of `roles` and wait for their decision.

        Returns {id, done, state, status, timed_out, decision: {event, arguments, comment, by,
        at}}. decision.event is APPROVE, APPROVE_WITH_CHANGES (arguments edited by the
        reviewer) or REJECT; done is false if wait_seconds passed first (0: do not wait)."""
        token = current_token()
        try:
            instance = ask_create(
                token=token,
                workflow="review-action",
                title=title,
                action={
                    "name": action,
                    "arguments": arguments,
                    **({"schema": schema} if schema else {}),
                },
                context=context or None,
                roles=roles,
                sla=sla,
                expires_in=expires_in,
                now=timezone.now(),
            )
        except WorkflowError as exc:
            raise ToolError(_refusal(exc)) from None
        finally:
            close_old_connections()
        return _wait(instance.pk, max(0, wait_seconds))

    @server.tool()
    def get_request_status(request_id: int, wait_seconds: int = 0) -> dict[str, Any]:
        """Where an ask stands (the same answer as request_approval), waiting up to
        wait_seconds for its decision."""
        token = current_token()
        instance = WorkflowInstance.objects.filter(pk=request_id).first()
        if instance is None or not can_view_instance(token.user, instance):
            close_old_connections()
            raise ToolError(f"No request {request_id} that this token may see.")
        return _wait(instance.pk, max(0, wait_seconds))

    @server.tool()
    def list_my_pending_asks() -> list[dict[str, Any]]:
        """This account's asks that nobody has answered yet, newest first."""
        token = current_token()
        try:
            asks = (
                Ask.objects.filter(instance__requester=token.user, instance__status="active")
                .select_related("instance")
                .order_by("-created_at")[:100]
            )
            return [
                {
                    "id": ask.instance_id,
                    "title": ask.instance.title,
                    "action": ask.action_name,
                    "state": ask.instance.state,
                    "asked_at": ask.created_at.isoformat(),
                    "expires_at": ask.expires_at.isoformat() if ask.expires_at else None,
                }
                for ask in asks
            ]
        finally:
            close_old_connections()

    return server


def _wait(instance_id: int, seconds: int) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            answer = wait_answer(instance_id, "decided")
        finally:
            close_old_connections()
        if answer["done"] or time.monotonic() >= deadline:
            return answer
        time.sleep(min(settings.ASK_WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _refusal(exc: WorkflowError) -> str:
    fields = getattr(exc, "field_errors", None) or {}
    details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
    return f"Signoff refused the ask: {exc.message}" + (f" ({details})" if details else "")
