"""GET /api/v1/insights/<key>/: the issue's fields, the period's validation, the refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import publish, review_flow
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(db):
    user = UserFactory(username="olga")
    user.user_permissions.add(Permission.objects.get(codename="view_insights"))
    return user


@pytest.fixture
def decided(requester, reviewer):
    publish(review_flow(sla="PT2H"))
    now = timezone.now()
    instance = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 5}, actor=requester, now=now
    )
    task = instance.tasks.get()
    task_claim(task_id=task.pk, actor=reviewer, now=now + timedelta(seconds=1))
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=now + timedelta(seconds=3))
    return instance


def test_figures_with_the_issues_field_names(api, owner, decided):
    today = timezone.localdate()
    since = (today - timedelta(days=7)).isoformat()
    response = api(owner).get(f"/api/v1/insights/review/?since={since}&until={today}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {
        "started": body["started"],
        "completed": body["completed"],
        "rejected": body["rejected"],
        "withdrawn": body["withdrawn"],
        "cancelled": body["cancelled"],
        "open": body["open"],
        "overdue": body["overdue"],
        "within_sla_ratio": body["within_sla_ratio"],
    } == {
        "started": 1,
        "completed": 1,
        "rejected": 0,
        "withdrawn": 0,
        "cancelled": 0,
        "open": 0,
        "overdue": 0,
        "within_sla_ratio": 1.0,
    }
    assert set(body["lead_time_s"]) == {"p50", "p90", "max"}
    (step,) = body["steps"]
    assert step == {
        "state": "review",
        "tasks": 1,
        "wait_p50_s": 1.0,
        "decide_p50_s": 2.0,
        "decide_p90_s": 2.0,
        "breaches": 0,
        "reminders": 0,
        "escalations": 0,
        "reworks": 0,
        "outcomes": {"APPROVE": 1},
    }
    # Without dates: the last 30 days.
    assert api(owner).get("/api/v1/insights/review/").json()["started"] == 1


def test_bad_periods_are_400_with_field_messages(api, owner, decided):
    client = api(owner)
    for query, field in [
        ("since=yesterday", "since"),
        ("since=2026-05-02&until=2026-05-01", "until"),
        ("since=2020-01-01&until=2026-05-01", "since"),
        ("version=0", "version"),
        ("version=7", "version"),
    ]:
        response = client.get(f"/api/v1/insights/review/?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["fields"], query


def test_refusals(api, owner, outsider, reviewer, decided):
    assert api(owner).get("/api/v1/insights/nosuch/").status_code == 404
    for user in (outsider, reviewer):
        for key in ("review", "nosuch"):
            response = api(user).get(f"/api/v1/insights/{key}/")
            assert response.status_code == 403, (user, key)
            assert "started" not in response.json()
    assert api(None).get("/api/v1/insights/review/").status_code == 401
