"""When the database has no room for a request, a 503 with Retry-After, never a 500.

A request that waited DATABASE_POOL_TIMEOUT_SECONDS for one of its process's pooled connections
(psycopg_pool's PoolTimeout, or TooManyRequests when the pool's queue is full), that PostgreSQL
refused a connection ("too many clients already", "too many connections for role/database",
"remaining connection slots are reserved"), or whose statement ran past its statement_timeout,
is answered as "busy, try again": JSON in the API's error shape under /api/, a plain page
elsewhere. The change it was making rolled back with its transaction; one that had committed
is not made twice by the retry (a decided task answers 409, API POSTs take Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from psycopg_pool import PoolTimeout, TooManyRequests

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
_REFUSED = (
    "too many clients already",
    "too many connections for",
    "remaining connection slots are reserved",
)


def is_overload(exc: BaseException | None) -> bool:
    """True for the errors of a saturated database, however Django wrapped them (its
    OperationalError has psycopg's as __cause__)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, PoolTimeout | TooManyRequests):
            return True
        if isinstance(exc, psycopg.errors.QueryCanceled) and "statement timeout" in str(exc):
            return True
        if isinstance(exc, psycopg.OperationalError) and any(m in str(exc) for m in _REFUSED):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def busy_response(request: HttpRequest) -> HttpResponse:
    content_type, body = _busy_body(request.path)
    response = HttpResponse(body, status=503, content_type=content_type)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _busy_body(path: str) -> tuple[str, bytes]:
    detail = "The service is busy; try again in a few seconds."
    if path.startswith("/api/"):
        return "application/json", json.dumps({"code": "unavailable", "detail": detail}).encode()
    # Rendered without a request: its context processors and base.html read the database.
    return "text/html; charset=utf-8", render_to_string("503.html", {"detail": detail}).encode()


class RequestLine:
    """ASGI: at most `limit` HTTP requests of this process run at once; the others wait their
    turn in order, without a thread, for up to `timeout` seconds, then get busy_response.

    Every request runs in a thread of its own and may hold one pooled connection: with no more
    requests running than the pool has connections less a reserve, what the WebSocket consumers
    read (their sign-in, catch-up and unread counts) never queues behind a crowd of requests,
    and the waiting requests cost an entry in a queue, not a thread each.
    """

    def __init__(self, application: Any, *, limit: int, timeout: float) -> None:
        self.application = application
        self.limit = limit
        self.timeout = timeout
        self._slots: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        slots = self._slots.setdefault(loop, asyncio.Semaphore(self.limit))
        try:
            await asyncio.wait_for(slots.acquire(), self.timeout)
        except TimeoutError:
            logger.warning("busy, answered 503 after waiting in line: %s", scope.get("path"))
            await _send_busy(scope, send)
            return
        try:
            await self.application(scope, receive, send)
        finally:
            slots.release()


async def _send_busy(scope: dict[str, Any], send: Any) -> None:
    content_type, body = _busy_body(scope.get("path", ""))
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class OverloadMiddleware:
    """Turns an overload raised by a view (or its template's rendering) into busy_response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_overload(exception):
            return None
        logger.warning("busy, answered 503: %s %s: %s", request.method, request.path, exception)
        return busy_response(request)
