"""Error pages, and under /api/ the API's one JSON error shape (docs/api.md) for every error,
including those that happen outside the API's views: in middleware, while reading a body too
large, or in an unhandled exception (DEBUG off; with DEBUG on Django shows its debug page)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

API_PREFIX = "/api/"

TOO_LARGE = (
    "The request body is too large (at most {limit:,} bytes); send less, or files one at a time."
)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    """The API's error body (approvals.api.errors.error_body) outside a DRF view."""
    body = {"code": code, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}
    return JsonResponse(body, status=status)


def too_large_detail() -> str:
    from django.conf import settings

    return TOO_LARGE.format(limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def page_error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    """A short error page of the site for a person (the same layout as the others)."""
    html = render_to_string(
        "error.html", {"title": title, "message": message, "status": status}, request=request
    )
    return HttpResponse(html, status=status)


# ----- Django's handlers (handler400... in the root URLconf)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return api_error(413, "too_large", too_large_detail())
        return api_error(400, "bad_request", "The request could not be understood.")
    if isinstance(exception, RequestDataTooBig):
        return page_error(request, 413, "Too large", too_large_detail())
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return api_error(403, "permission_denied", "You may not do this.")
    return defaults.permission_denied(request, exception)  # type: ignore[arg-type]


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return api_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)  # type: ignore[arg-type]


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return api_error(
            500,
            "server_error",
            "Something went wrong on our side; it was logged. Try again, or tell an admin.",
        )
    return defaults.server_error(request)
