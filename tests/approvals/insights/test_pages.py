"""The insights pages: what a process owner sees, the CSV of each table, and the refusals."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.utils import timezone

from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import parallel_flow, publish, review_flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def requests(requester, reviewer):
    publish(review_flow(sla="PT2H"))
    now = timezone.now()
    done = instance_start(
        definition_key="review", context={"title": "Desk", "amount": 5}, actor=requester, now=now
    )
    task = done.tasks.get()
    task_claim(task_id=task.pk, actor=reviewer, now=now)
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=now)
    waiting = instance_start(
        definition_key="review", context={"title": "Chair", "amount": 5}, actor=requester, now=now
    )
    return done, waiting


def rows(response):
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_overview_of_all_workflows(client, owner, requests):
    client.force_login(owner)
    page = client.get("/insights/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="overview-figures"' in body and "<svg" in body
    assert 'href="/insights/review/"' in body
    assert "download=workflows" in body
    table = rows(client.get("/insights/?days=7&download=workflows"))
    assert table[0][:3] == ["workflow", "started", "completed"]
    assert table[1][:3] == ["review", "2", "1"]
    assert table[-1][:3] == ["all", "2", "1"]


def test_one_workflow_with_heat_map_and_tables(client, owner, requests):
    client.force_login(owner)
    page = client.get("/insights/review/?days=30")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="heatmap"' in body and 'id="heat-legend"' in body
    assert "median time here" in body
    assert "/insights/review/waiting/?state=review" in body
    assert "1\N{MULTIPLICATION SIGN} in the period" in body  # review → approved, taken once
    for name in ("overview", "throughput", "steps", "transitions", "roles", "decisions"):
        assert f"download={name}" in body
    steps = rows(client.get("/insights/review/?days=30&download=steps"))
    assert steps[0][0] == "state" and steps[1][0] == "review"
    transitions = rows(client.get("/insights/review/?download=transitions"))
    assert ["review", "approved", "1"] in transitions
    # No inline script or style: the pages run under the strict CSP.
    assert not re.search(r"<script(?![^>]*\bsrc=)", body)
    assert " style=" not in body and "<style" not in body


def test_waiting_lists_requests_in_a_state(client, owner, requests):
    client.force_login(owner)
    page = client.get("/insights/review/waiting/?state=review")
    assert page.status_code == 200
    assert "Chair" in page.content.decode() and "Desk" not in page.content.decode()
    table = rows(client.get("/insights/review/waiting/?state=review&download=waiting"))
    assert [r[2] for r in table[1:]] == ["Chair"]
    assert client.get("/insights/review/waiting/?state=nowhere").status_code == 404


def test_parallel_workflow_page(client, owner, requester):
    publish(parallel_flow())
    instance_start(definition_key="fulfil", context={}, actor=requester, now=timezone.now())
    client.force_login(owner)
    assert client.get("/insights/fulfil/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/insights/",
        "/insights/?download=workflows",
        "/insights/review/",
        "/insights/review/?download=steps",
        "/insights/review/waiting/?state=review",
        "/insights/review/waiting/?state=review&download=waiting",
    ],
)
def test_outsider_is_refused_everywhere(client, outsider, reviewer, requests, url):
    for user in (outsider, reviewer):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 403, (user, url)
        assert b"Chair" not in response.content
    client.logout()
    assert client.get(url).status_code == 302  # to the login page


def test_bad_input(client, owner, requests):
    client.force_login(owner)
    assert client.get("/insights/nosuch/").status_code == 404
    assert client.get("/insights/review/?download=nosuch").status_code == 404
    bad = client.get("/insights/review/?since=2026-05-01&until=2026-04-01")
    assert bad.status_code == 400 and b"period-errors" in bad.content
    assert client.get("/insights/?since=not-a-date").status_code == 400
    assert client.get("/insights/review/?version=9").status_code == 400
    assert client.get("/insights/?days=12").status_code == 400
    assert client.post("/insights/").status_code == 405


def test_nav_shows_insights_only_to_owners(client, owner, outsider):
    client.force_login(owner)
    assert b'href="/insights/"' in client.get("/inbox/").content
    client.force_login(outsider)
    assert b'href="/insights/"' not in client.get("/inbox/").content
