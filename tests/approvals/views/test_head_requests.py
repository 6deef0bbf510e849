"""HEAD on every read page and every GET endpoint of the API answers as GET does (status and
headers, no body), with the same permission checks; it changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.services.api_tokens import token_create
from tests.approvals.views.conftest import snapshot, start

pytestmark = pytest.mark.django_db

PAGES = [
    "/",
    "/inbox/",
    "/inbox/?tab=queue&q=lap",
    "/inbox/counts/",
    "/tasks/{task}/",
    "/people/?q=ri",
    "/requests/",
    "/requests/new/",
    "/requests/new/review/",
    "/requests/{instance}/",
    "/notifications/",
    "/accounts/profile/",
    "/accounts/api-tokens/",
    "/accounts/password_change/",
    "/accounts/login/",
    "/healthz",
]
API = [
    "/api/v1/workflows/",
    "/api/v1/instances/",
    "/api/v1/instances/{instance}/",
    "/api/v1/instances/{instance}/history/",
    "/api/v1/instances/{instance}/history/verify/",
    "/api/v1/tasks/",
    "/api/v1/tasks/{task}/",
    "/api/schema/",
    "/api/docs/",
]


@pytest.fixture
def instance(review, requester):
    return start(requester)


def urls(paths: list[str], instance) -> list[str]:
    task = instance.tasks.get()
    return [p.format(task=task.pk, instance=instance.pk) for p in paths]


def test_head_on_read_pages_answers_like_get(client: Client, reviewer, instance):
    client.force_login(reviewer)
    before = snapshot()
    for url in urls(PAGES, instance):
        got = client.get(url)
        head = client.head(url)
        assert head.status_code == got.status_code, url
        assert got.status_code in (200, 302) or url == "/healthz", url
        assert head["Content-Type"] == got["Content-Type"], url
        assert head.content == b"", url
    assert snapshot() == before


def test_head_on_the_apis_get_endpoints_answers_like_get(reviewer, instance):
    _, plaintext = token_create(user=reviewer, name="head", actor=reviewer, now=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    for url in urls(API, instance):
        got = client.get(url)
        head = client.head(url)
        assert head.status_code == got.status_code == 200, url
        assert head["Content-Type"] == got["Content-Type"], url


def test_head_keeps_the_refusals_of_get(client: Client, outsider, instance):
    page, request = urls(["/tasks/{task}/", "/requests/{instance}/"], instance)
    client.force_login(outsider)
    assert client.head(page).status_code == client.get(page).status_code == 404
    assert client.head(request).status_code == 404
    client.logout()
    anonymous = client.head("/inbox/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
