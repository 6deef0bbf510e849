"""Error answers: under /api/, always the API's one JSON error shape (docs/api.md), including
for errors that happen outside the API's views (in middleware, while reading a body that is too
large, an unhandled exception with DEBUG off); elsewhere the site's pages."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

from approvals.api.errors import error_body, too_large_detail

API_PREFIX = "/api/"

# The codes of docs/api.md for an error whose body is not ours (Django's, a renderer's).
CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}
SERVER_ERROR = "Something went wrong on our side; it was logged. Try again, or tell an admin."
# Headers that tell the client what to do next; kept when an error body is replaced.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def technical_pages() -> bool:
    """Whether Django's debug pages are for this developer: DEBUG on because they asked."""
    return settings.DEBUG and settings.TECHNICAL_ERROR_PAGES


def api_error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    """The API's error body outside a DRF view."""
    return JsonResponse(error_body(code, detail, **extra), status=status)


def page_error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    """A short error page of the site, for a person."""
    html = render_to_string("error.html", {"title": title, "message": message}, request=request)
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 (Django says 400)."""
    if isinstance(exception, RequestDataTooBig):
        if is_api(request):
            return api_error(413, "too_large", too_large_detail())
        return page_error(request, 413, "Too large", too_large_detail())
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


class ApiErrorsAsJson:
    """Under /api/, an error answer that is not JSON (Django's 404 and 500 pages, a renderer's
    YAML or HTML 405) is replaced by the JSON shape, keeping its status and the headers that say
    what to do next. With DEBUG asked for (TECHNICAL_ERROR_PAGES) a 500 stays Django's debug
    page, for the developer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        status = response.status_code
        if status < 400 or not is_api(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        if status >= 500 and technical_pages():
            return response
        converted = api_error(status, CODES.get(status, _code(status)), _detail(status))
        for header in KEPT_HEADERS:
            if header in response:
                converted[header] = response[header]
        return converted


class FriendlyErrorPages:
    """Outside /api/, a 404 or 500 made while DEBUG is on only because nothing was configured
    (the embedded default) is the site's own page (templates/404.html, 500.html), not Django's
    technical one, which lists every URL pattern and the settings. A developer who sets
    DEBUG=true keeps the technical pages; with DEBUG off Django uses the site's pages itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code not in (404, 500)
            or not settings.DEBUG
            or technical_pages()
            or is_api(request)
        ):
            return response
        if response.status_code == 404:
            return defaults.page_not_found(request, Http404())
        return defaults.server_error(request)


def _code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _detail(status: int) -> str:
    if status == 413:
        return too_large_detail()
    if status >= 500:
        return SERVER_ERROR
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return "The request failed."
