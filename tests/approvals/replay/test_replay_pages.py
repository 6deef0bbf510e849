"""The replay page and GET /api/v1/instances/{id}/at/?seq=N: for whoever may see the request."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import publish, review_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def instance(requester, reviewer):
    publish(review_flow())
    now = timezone.now()
    instance = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 5}, actor=requester, now=now
    )
    task = instance.tasks.get()
    task_claim(task_id=task.pk, actor=reviewer, now=now)
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=now)
    instance.refresh_from_db()
    return instance


def test_page_shows_the_chosen_point(client, requester, instance):
    client.force_login(requester)
    assert b'id="replay-link"' in client.get(f"/requests/{instance.pk}/").content
    page = client.get(f"/requests/{instance.pk}/replay/?seq=3")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="replay-seq"' in body and 'value="3"' in body
    assert "rob" in body.split('id="replay-tasks"')[1].split("</table>")[0]  # claimed at 3
    assert "Desk" in body.split('id="replay-context"')[1]
    end = client.get(f"/requests/{instance.pk}/replay/").content.decode()
    assert "No task was open." in end
    assert client.get(f"/requests/{instance.pk}/replay/?seq=99").status_code == 400
    assert client.get(f"/requests/{instance.pk}/replay/?seq=x").status_code == 400


def test_api_snapshot(requester, instance, settings):
    settings.CACHES = {
        **settings.CACHES,
        "api": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "r"},
    }
    caches["api"].clear()
    api = APIClient()
    api.force_authenticate(requester)
    body = api.get(f"/api/v1/instances/{instance.pk}/at/?seq=2").json()
    task = instance.tasks.get()
    assert body["seq"] == 2 and body["states"] == ["review"]
    assert body["open_tasks"] == [
        {"id": task.pk, "state": "review", "assignee": None, "roles": ["manager"]}
    ]
    assert body["context"]["title"] == "Desk" and "at" in body
    assert set(body) == {"seq", "at", "states", "open_tasks", "context"}
    for bad in ("", "?seq=0", "?seq=abc", f"?seq={instance.audit_seq + 1}"):
        response = api.get(f"/api/v1/instances/{instance.pk}/at/{bad}")
        assert response.status_code == 400, bad
        assert "seq" in response.json()["fields"]


def test_outsider_is_refused(client, outsider, instance, settings):
    client.force_login(outsider)
    assert client.get(f"/requests/{instance.pk}/replay/?seq=1").status_code == 404
    assert client.get(f"/requests/{instance.pk + 999}/replay/").status_code == 404
    settings.CACHES = {
        **settings.CACHES,
        "api": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "o"},
    }
    api = APIClient()
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/instances/{instance.pk}/at/?seq=1").status_code == 404
