"""Request checks that come before every view."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone

from approvals.storable import SURROGATE_MESSAGE, has_surrogates
from workflow_app.errors import api_error, is_api, page_error

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UTF8 = codecs.lookup("utf-8").name


class StorableTextMiddleware:
    """Refuses query strings and form fields holding lone surrogates, naming the field (400).

    Django decodes them with the charset the request declares, and some charsets (utf-7,
    unicode_escape) turn plain ASCII into lone surrogates ("+2AA-" is "\\ud800"), which no form
    field refuses and the database driver cannot encode: a 500 wherever the text went. Decoded
    as UTF-8 (what browsers send, and the default) they cannot arise, so only requests that
    declare another charset are looked at. NUL characters are left to the forms, whose text
    fields refuse them with a message of their own; the API's JSON bodies are checked by its
    serializers (approvals.storable).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = self._unstorable_field(request) if _other_charset(request) else None
        if field is None:
            return self.get_response(request)
        if is_api(request):
            return api_error(
                400, "invalid", "The request has errors.", fields={field: [SURROGATE_MESSAGE]}
            )
        return page_error(request, 400, "Invalid text", f"Field '{field}': {SURROGATE_MESSAGE}")

    @staticmethod
    def _unstorable_field(request: HttpRequest) -> str | None:
        sources: list[QueryDict] = [request.GET]
        if request.method == "POST" and request.content_type in FORM_TYPES:
            # Read the body first: a view that reads it itself (a signature check) still can.
            request.body  # noqa: B018
            sources.append(request.POST)
        for data in sources:
            for key, values in data.lists():
                if has_surrogates(key):
                    return "(the name of a field)"
                if any(has_surrogates(value) for value in values):
                    return key
        return None


def _other_charset(request: HttpRequest) -> bool:
    encoding = request.encoding
    return encoding is not None and codecs.lookup(encoding).name != UTF8


class UserTimeZone:
    """Each request starts and ends in the site's TIME_ZONE. The reader's own zone is
    activated while their page renders (approvals.formatting.reader_time_zone, a context
    processor): reading the user here, before the view, would take a database connection
    outside the view, where a busy database is not the 503 page (workflow_app.overload)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
