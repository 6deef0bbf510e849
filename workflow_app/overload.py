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

import logging
from collections.abc import Callable

import psycopg
from django.http import HttpRequest, HttpResponse, JsonResponse
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
    detail = "The service is busy; try again in a few seconds."
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "unavailable", "detail": detail}, status=503)
    else:
        # Rendered without the request: its context processors and base.html read the database.
        response = HttpResponse(render_to_string("503.html", {"detail": detail}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


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
