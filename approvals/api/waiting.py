"""Waiting for a request to be decided, without holding anything while waiting.

`GET /api/v1/instances/{id}/wait/?until=decided|completed&timeout=30` (long-poll) and
`GET /api/v1/instances/{id}/stream/` (Server-Sent Events, resumable with Last-Event-ID) are
plain ASGI handlers in front of Django (workflow_app/asgi.py): a waiter is a coroutine on the
server's event loop, not a thread, and it holds no database connection and no row lock while
it waits. It reads the database briefly when it starts, then again only when the request's
channel-layer group (`instance.<id>`, the group live pages watch; approvals.notify.push) says
something changed, and every ASK_WAIT_POLL_SECONDS as a light fallback (a push lost with a
broker outage). Each read borrows a pooled connection and gives it back at once.

Authentication, throttling and visibility are the API's own: an API token (or the session
cookie), ReadThrottle, and the instance the caller may see, else 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from importlib import import_module
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions

from approvals.api.authentication import TokenAuthentication
from approvals.api.serializers import AuditEventSerializer
from approvals.api.throttling import ReadThrottle
from approvals.models import Ask, AuditEvent, Decision, WorkflowInstance
from approvals.notify.push import PollRelay, instance_group
from approvals.permissions import can_view_instance

ROUTE = re.compile(r"^/api/v1/instances/(?P<pk>[0-9]{1,18})/(?P<kind>wait|stream)/$")
UNTIL = ("decided", "completed")
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]


def with_waits(django_app: Any) -> Any:
    """The HTTP application: waits and streams here, everything else to Django."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = ROUTE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await django_app(scope, receive, send)
            return
        handler = InstanceWait if match["kind"] == "wait" else InstanceStream
        await handler(scope, receive, send, int(match["pk"])).run()

    application.django_app = django_app  # type: ignore[attr-defined]
    return application


# ----- reads: short, each on a pooled connection given back at once


@dataclass
class Caller:
    user: Any
    refusal: tuple[int, dict[str, Any], list[tuple[bytes, bytes]]] | None = None


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _error(status: int, code: str, detail: str, **extra: Any) -> tuple[int, dict, list]:
    return status, {"code": code, "detail": detail, **extra}, []


def authorise(scope: dict[str, Any], instance_id: int) -> Caller:
    """Who calls (token, else session), throttled as API reads; 404 for what they may not see."""
    meta = {
        "HTTP_AUTHORIZATION": _header(scope, b"authorization"),
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
    }
    request = HttpRequest()
    request.META = meta
    try:
        found = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except exceptions.AuthenticationFailed as exc:
        return Caller(AnonymousUser(), _error(401, "not_authenticated", str(exc.detail)))
    user = found[0] if found is not None else _session_user(scope)
    if not user.is_authenticated:
        return Caller(
            user, _error(401, "not_authenticated", "Send 'Authorization: Bearer <token>'.")
        )
    throttle = ReadThrottle()
    request.user = user
    if not throttle.allow_request(request, None):  # type: ignore[arg-type]
        wait = throttle.wait() or 1
        status, body, _ = _error(429, "throttled", "Too many requests.")
        return Caller(user, (status, body, [(b"retry-after", str(int(wait) + 1).encode())]))
    instance = WorkflowInstance.objects.filter(pk=instance_id).select_related("definition").first()
    if instance is None or not can_view_instance(user, instance):
        return Caller(user, _error(404, "not_found", "Not found."))
    return Caller(user)


def _session_user(scope: dict[str, Any]) -> Any:
    """The signed-in user of the session cookie, checked as Django's middleware checks it."""
    cookies = SimpleCookie(_header(scope, b"cookie"))
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return AnonymousUser()
    store = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
    return get_user(SimpleNamespace(session=store))  # type: ignore[arg-type]


def wait_answer(instance_id: int, until: str) -> dict[str, Any]:
    """The request as a waiter reads it: done when `until` holds (decided: a decision was
    made or the request ended; completed: it ended), with the decision that settled it."""
    instance = WorkflowInstance.objects.get(pk=instance_id)
    decision = (
        Decision.objects.filter(task__instance_id=instance_id)
        .select_related("actor")
        .order_by("-decided_at", "-pk")
        .first()
    )
    ended = instance.status != "active"
    done = ended if until == "completed" else (ended or decision is not None)
    return {
        "done": done,
        "id": instance.pk,
        "state": instance.state,
        "status": instance.status,
        "timed_out": instance.state == "timed_out",
        "decision": _decision(instance, decision) if decision is not None else None,
    }


def _decision(instance: WorkflowInstance, decision: Decision) -> dict[str, Any]:
    arguments = None
    ask = Ask.objects.filter(instance=instance).exclude(action_name="").first()
    if ask is not None:
        if decision.event == "APPROVE_WITH_CHANGES":
            arguments = decision.data.get("arguments")
        elif decision.event == "APPROVE":
            arguments = ask.arguments
    return {
        "event": decision.event,
        "arguments": arguments,
        "comment": decision.comment,
        "by": decision.actor.username,
        "at": decision.decided_at.isoformat(),
    }


def events_after(instance_id: int, seq: int) -> tuple[list[dict[str, Any]], bool]:
    """Audit events after `seq` (what the history endpoint shows), and whether it ended."""
    rows = (
        AuditEvent.objects.filter(instance_id=instance_id, seq__gt=seq)
        .select_related("actor")
        .order_by("seq")[:200]
    )
    ended = WorkflowInstance.objects.filter(pk=instance_id).exclude(status="active").exists()
    return [dict(AuditEventSerializer(row).data) for row in rows], ended


# ----- the waiters


class _Waiter:
    def __init__(self, scope: dict[str, Any], receive: Any, send: Any, instance_id: int) -> None:
        self.scope, self.receive, self.send, self.instance_id = scope, receive, send, instance_id
        self.gone = asyncio.Event()
        self.layer = get_channel_layer()
        self.channel = ""

    async def _watch_disconnect(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return

    async def respond_json(self, status: int, body: Any, headers: list | None = None) -> None:
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*JSON_HEADERS, *(headers or [])],
            }
        )
        await self.send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def run(self) -> None:
        message = await self.receive()  # the request (a GET: no body to read)
        if message["type"] == "http.disconnect":
            return
        if self.scope.get("method") not in ("GET", "HEAD"):
            await self.respond_json(
                405, {"code": "method_not_allowed", "detail": "Use GET."}, [(b"allow", b"GET")]
            )
            return
        watcher = asyncio.create_task(self._watch_disconnect())
        try:
            caller = await database_sync_to_async(authorise)(self.scope, self.instance_id)
            if caller.refusal is not None:
                status, body, headers = caller.refusal
                await self.respond_json(status, body, headers)
                return
            await self.serve()
        finally:
            watcher.cancel()
            await self._leave()

    async def serve(self) -> None:
        raise NotImplementedError

    async def _join(self) -> None:
        """Listen to the request's group; in the embedded default also keep this process's
        poll relay running, which brings what other processes commit."""
        if self.layer is None:
            return
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(instance_group(self.instance_id), self.channel)
        if settings.NOTIFY_PUSH == "poll":
            self.relay = PollRelay.for_loop()
            await self.relay.acquire()

    async def _leave(self) -> None:
        if self.layer is None or not self.channel:
            return
        with contextlib.suppress(Exception):
            await self.layer.group_discard(instance_group(self.instance_id), self.channel)
        if getattr(self, "relay", None) is not None:
            await self.relay.release()
            self.relay = None
        self.channel = ""

    async def changed(self, timeout: float) -> bool:
        """Wait until the group says something changed, the fallback poll is due, or the
        client left (then False)."""
        waits = [asyncio.ensure_future(self.gone.wait())]
        if self.layer is not None and self.channel:
            waits.append(asyncio.ensure_future(self.layer.receive(self.channel)))
        _, pending = await asyncio.wait(
            waits, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
        for future in pending:
            future.cancel()
        for future in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await future
        return not self.gone.is_set()


class InstanceWait(_Waiter):
    async def serve(self) -> None:
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        until = (params.get("until") or ["decided"])[0]
        raw_timeout = (params.get("timeout") or ["30"])[0]
        fields: dict[str, list[str]] = {}
        if until not in UNTIL:
            fields["until"] = ["One of: decided, completed."]
        limit = settings.ASK_WAIT_MAX_SECONDS
        if not raw_timeout.isdigit() or int(raw_timeout) > limit:
            fields["timeout"] = [f"Whole seconds from 0 to {limit}."]
        if fields:
            await self.respond_json(
                400, {"code": "invalid", "detail": "Bad parameters.", "fields": fields}
            )
            return
        deadline = time.monotonic() + int(raw_timeout)
        await self._join()  # before the first read: a change committed in between is not missed
        answer = await database_sync_to_async(wait_answer)(self.instance_id, until)
        poll = settings.ASK_WAIT_POLL_SECONDS
        while not answer["done"]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not await self.changed(min(remaining, poll)):
                return  # the client left: nothing to answer
            answer = await database_sync_to_async(wait_answer)(self.instance_id, until)
        await self.respond_json(200, answer)


class InstanceStream(_Waiter):
    """Server-Sent Events: each audit event of the request (`id:` its sequence number,
    `event:` its name, `data:` as the history endpoint shows it), from Last-Event-ID on; then
    `event: end` once the request ended. A comment line every ASK_STREAM_PING_SECONDS keeps
    proxies from closing it; after ASK_STREAM_MAX_SECONDS it closes and the client resumes."""

    async def serve(self) -> None:
        last = (
            _header(self.scope, b"last-event-id")
            or (
                parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("last_event_id")
                or ["0"]
            )[0]
        )
        seq = int(last) if last.isdigit() and len(last) < 18 else 0
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await self._join()
        ends_at = time.monotonic() + settings.ASK_STREAM_MAX_SECONDS
        ping = settings.ASK_STREAM_PING_SECONDS
        next_ping = time.monotonic() + ping
        await self._chunk(b"retry: 2000\n\n")
        while True:
            events, ended = await database_sync_to_async(events_after)(self.instance_id, seq)
            for event in events:
                seq = event["seq"]
                await self._chunk(
                    f"id: {seq}\nevent: {event['event']}\ndata: {json.dumps(event)}\n\n".encode()
                )
            if ended and not events:
                end = json.dumps({"at": timezone.now().isoformat()})
                await self._chunk(f"event: end\ndata: {end}\n\n".encode(), last=True)
                return
            if events:
                continue  # more may follow at once (200 a read)
            now = time.monotonic()
            if now >= ends_at:
                await self._chunk(b"", last=True)
                return
            if now >= next_ping:
                await self._chunk(b": ping\n\n")
                next_ping = now + ping
            wait = min(settings.ASK_WAIT_POLL_SECONDS, next_ping - now, ends_at - now)
            if not await self.changed(wait):
                return

    async def _chunk(self, body: bytes, *, last: bool = False) -> None:
        await self.send({"type": "http.response.body", "body": body, "more_body": not last})
