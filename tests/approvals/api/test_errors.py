"""Every error under /api/ is the API's JSON error shape (docs/api.md): unknown URLs, methods
not allowed, bodies too large, unhandled exceptions (DEBUG off). Pages keep their HTML."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from approvals.models import WorkflowInstance
from tests.approvals.flows import publish, review_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.approvals.api.failing_urls"


@pytest.fixture
def api_client(api, requester):
    client = api(requester)
    client.raise_request_exception = False  # answer as the server would, with the 500
    return client


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) >= {"code", "detail"} and body["detail"]
    return body


def test_an_unhandled_exception_in_an_api_view_is_a_json_500(production, api_client, caplog):
    body = error_of(api_client.get("/api/v1/broken/"), 500)
    assert body["code"] == "server_error"
    assert "a bug" not in body["detail"]  # the traceback stays in the log
    assert "RuntimeError: a bug in an API view" in caplog.text


def test_an_unhandled_exception_in_a_plain_view_under_api_is_a_json_500(production, api_client):
    assert error_of(api_client.get("/api/v1/broken-plain/"), 500)["code"] == "server_error"


def test_the_embedded_default_keeps_json_errors(settings, api_client):
    """DEBUG on without being asked for: still the JSON shape, never a debug page."""
    settings.DEBUG = True
    settings.TECHNICAL_ERROR_PAGES = False
    settings.ROOT_URLCONF = "tests.approvals.api.failing_urls"
    assert error_of(api_client.get("/api/v1/broken/"), 500)["code"] == "server_error"
    assert error_of(api_client.get("/api/v1/nope/"), 404)["code"] == "not_found"


def test_pages_keep_their_html_500(production, requester):
    client = Client(raise_request_exception=False)
    client.force_login(requester)
    response = client.get("/broken/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_body_over_the_upload_limit_is_a_json_413(production, api_client, settings):
    publish(review_flow())
    body = json.dumps({"context": {"title": "x" * 5_000_000, "amount": 1}})
    response = api_client.post(
        "/api/v1/workflows/review/instances/", body, content_type="application/json"
    )
    error = error_of(response, 413)
    assert error["code"] == "too_large"
    assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes" in error["detail"]
    assert not WorkflowInstance.objects.exists()


def test_unknown_api_urls_are_a_json_404(production, api_client):
    for path in ("/api/v1/nope/", "/api/v1/instances/abc/", "/api/v2/", "/api/v1/tasks/1/claim"):
        assert error_of(api_client.get(path), 404)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/tasks/", "/api/schema/", "/api/docs/"])
def test_a_method_not_allowed_is_a_json_405_with_allow(production, api_client, path):
    response = api_client.put(path, "{}", content_type="application/json")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_errors_of_the_outsider_are_json_too(production, api, outsider):
    client = api(None)
    client.raise_request_exception = False
    assert error_of(client.get("/api/v1/tasks/"), 401)["code"] == "not_authenticated"
