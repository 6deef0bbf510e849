"""GET /metrics: who may read it, and counts that say exactly what committed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from approvals import metrics
from approvals.models import Task
from approvals.services.errors import WorkflowError
from approvals.services.instances import instance_start
from approvals.services.sla import sla_sweep
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.workflow_app.metrics_scrape import delta, parse, value

TOKEN = "metrics-token-for-tests"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client: Client) -> dict:
    response = client.get("/metrics", **BEARER)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def test_no_token_configured_is_404(client: Client, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", **BEARER).status_code == 404


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"bearer{TOKEN}"]
)
def test_without_the_token_is_401(client: Client, settings, header: str | None) -> None:
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"signoff_" not in response.content


def test_only_get(client: Client, settings) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert client.post("/metrics", **BEARER).status_code == 405


def test_a_signed_in_admin_still_needs_the_token(client: Client, settings, admin_user) -> None:
    settings.METRICS_TOKEN = TOKEN
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 401


@pytest.mark.django_db
def test_counts_are_what_committed(
    client: Client, settings, requester, reviewer, django_capture_on_commit_callbacks
) -> None:
    settings.METRICS_TOKEN = TOKEN
    publish(review_flow(sla="PT1H", remind=["PT30M"], escalate_to=["director"]))
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        first = instance_start(
            definition_key="review", context={"title": "A", "amount": 5}, actor=requester, now=NOW
        )
        second = instance_start(
            definition_key="review", context={"title": "B", "amount": 6}, actor=requester, now=NOW
        )
        task = Task.objects.get(instance=first)
        task_decide(
            task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW + timedelta(minutes=10)
        )
        # Refused (already decided): rolled back, so counted nowhere.
        with pytest.raises(WorkflowError):
            task_decide(task_id=task.pk, event="REJECT", actor=reviewer, now=NOW)
        other = Task.objects.get(instance=second)
        task_decide(
            task_id=other.pk,
            event="REQUEST_CHANGES",
            actor=reviewer,
            comment="more detail",
            now=NOW + timedelta(hours=2),
        )
    changed = delta(before, scrape(client))
    assert changed == {
        ("signoff_transitions_total", frozenset({("workflow", "review"), ("event", "APPROVE")})): 1,
        (
            "signoff_transitions_total",
            frozenset({("workflow", "review"), ("event", "REQUEST_CHANGES")}),
        ): 1,
        ("signoff_decisions_total", frozenset({("workflow", "review"), ("outcome", "APPROVE")})): 1,
        (
            "signoff_decisions_total",
            frozenset({("workflow", "review"), ("outcome", "REQUEST_CHANGES")}),
        ): 1,
        ("signoff_decision_seconds_count", frozenset({("workflow", "review")})): 2,
        ("signoff_decision_seconds_sum", frozenset({("workflow", "review")})): 600 + 7200,
    }


@pytest.mark.django_db
def test_sla_sweep_counts_reminders_escalations_and_its_time(
    client: Client, settings, requester, django_capture_on_commit_callbacks
) -> None:
    settings.METRICS_TOKEN = TOKEN
    publish(review_flow(sla="PT1H", remind=["PT30M"], escalate_to=["director"]))
    with django_capture_on_commit_callbacks(execute=True):
        instance_start(
            definition_key="review", context={"title": "A", "amount": 5}, actor=requester, now=NOW
        )
        instance_start(
            definition_key="review", context={"title": "B", "amount": 5}, actor=requester, now=NOW
        )
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        sla_sweep(now=NOW + timedelta(minutes=40))  # two reminders
        sla_sweep(now=NOW + timedelta(minutes=70))  # two escalations to director
    after = scrape(client)
    assert value(after, "signoff_reminders_total") - value(before, "signoff_reminders_total") == 2
    assert (
        value(after, "signoff_escalations_total") - value(before, "signoff_escalations_total") == 2
    )
    assert (
        value(after, "signoff_sla_sweep_seconds_count")
        - value(before, "signoff_sla_sweep_seconds_count")
        == 2
    )


@pytest.mark.django_db
def test_gauges_come_from_the_refresh_not_the_scrape(
    client: Client, settings, requester, reviewer, django_capture_on_commit_callbacks
) -> None:
    settings.METRICS_TOKEN = TOKEN
    publish(review_flow(sla="PT1H"))
    with django_capture_on_commit_callbacks(execute=True):
        for title in ("A", "B", "C"):
            instance_start(
                definition_key="review",
                context={"title": title, "amount": 5},
                actor=requester,
                now=NOW,
            )
    metrics.refresh_gauges(now=NOW + timedelta(minutes=30))
    samples = scrape(client)
    assert value(samples, "signoff_open_tasks", workflow="review", state="review") == 3
    assert value(samples, "signoff_open_tasks", workflow="review", state="changes") == 0
    assert value(samples, "signoff_overdue_tasks", workflow="review") == 0
    for channel in ("steps", "slack", "webhooks"):
        assert value(samples, "signoff_outbox_backlog", channel=channel) == 0
        assert value(samples, "signoff_outbox_oldest_seconds", channel=channel) == 0

    # A decision does not move the gauge until the next refresh.
    task = Task.objects.filter(instance__title__startswith="A").get()
    with django_capture_on_commit_callbacks(execute=True):
        task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    samples = scrape(client)
    assert value(samples, "signoff_open_tasks", workflow="review", state="review") == 3
    metrics.refresh_gauges(now=NOW + timedelta(hours=2))
    samples = scrape(client)
    assert value(samples, "signoff_open_tasks", workflow="review", state="review") == 2
    assert value(samples, "signoff_overdue_tasks", workflow="review") == 2


def test_the_dashboard_and_the_alerts_use_only_metrics_that_exist() -> None:
    import json
    import re

    import yaml

    from tests.processes import BASE_DIR

    names = set()
    for metric in vars(metrics).values():
        if hasattr(metric, "_name") and hasattr(metric, "_type"):
            base = metric._name + ("_total" if metric._type == "counter" else "")
            names.add(base)
            if metric._type == "histogram":
                names.update({f"{base}_bucket", f"{base}_count", f"{base}_sum"})
    dashboard = json.loads((BASE_DIR / "docs" / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((BASE_DIR / "docs" / "prometheus-alerts.yml").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for e in expressions for name in re.findall(r"signoff_[a-z_]+", e)}
    assert used <= names, used - names
    issue = {
        "signoff_transitions_total",
        "signoff_decisions_total",
        "signoff_decision_seconds_bucket",
        "signoff_open_tasks",
        "signoff_overdue_tasks",
        "signoff_escalations_total",
        "signoff_reminders_total",
        "signoff_action_attempts_total",
        "signoff_manual_reviews_total",
        "signoff_outbox_backlog",
        "signoff_outbox_oldest_seconds",
        "signoff_deliveries_failed_total",
        "signoff_websocket_connections",
        "signoff_sla_sweep_seconds_count",
    }
    assert issue <= names and issue <= used
