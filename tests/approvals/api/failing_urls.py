"""The real URLs, plus endpoints that fail as code can fail, to test what the client gets."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.views import APIView

from workflow_app.urls import *  # noqa: F403  (the handlers too)
from workflow_app.urls import urlpatterns as real_urlpatterns


class Broken(APIView):
    def get(self, request: Request) -> HttpResponse:
        raise RuntimeError("a bug in an API view")


def broken_page(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a plain view")


urlpatterns = [
    path("api/v1/broken/", Broken.as_view()),
    path("api/v1/broken-plain/", broken_page),
    path("broken/", broken_page),
    *real_urlpatterns,
]
