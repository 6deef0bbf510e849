"""What the REST API and webhook fan-out cost on top of the services, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_api \
        .venv/bin/python bench/api.py [--requests N]

In one process, with Django's test client (WSGI, no network), N requests each: start a request
(POST /api/v1/workflows/{key}/instances/), with and without an Idempotency-Key, a replay of a
key, and a decision (POST /api/v1/tasks/{id}/decide/); the same start and decision through the
services directly; the queries of one warm API decision; and the decision with 0 and with 3
webhook subscriptions (the in-transaction fan-out). Then N deliveries posted to a local
receiver. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import ensure_database, setup_django  # noqa: E402

FLOW: dict[str, Any] = {
    "id": "bench-api",
    "title": "Bench API",
    "initial": "review",
    "form": {"type": "object", "properties": {"n": {"type": "integer"}}},
    "states": {
        "review": {"meta": {"task": {"roles": ["manager"]}}, "on": {"APPROVE": "approved"}},
        "approved": {"type": "final"},
    },
}


def timed(count: int, call: Callable[[int], None]) -> list[float]:
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def row(name: str, latencies: list[float]) -> str:
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[18]
    return f"| {name} | {len(latencies)} | {p50:.2f} | {p95:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    count = parser.parse_args().requests
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        sys.exit("bench/api.py measures PostgreSQL only: set DATABASE_URL=postgres://...")
    ensure_database(url)
    os.environ["API_WRITE_RATE"] = os.environ["API_READ_RATE"] = "100000000/minute"
    setup_django()

    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import User
    from approvals.integrations.webhooks.services import webhook_attempt
    from approvals.models import Task, WebhookDelivery, WebhookSubscription
    from approvals.services.api_tokens import token_create
    from approvals.services.definitions import definition_import
    from approvals.services.instances import instance_start
    from approvals.services.task_work import task_decide
    from tests.approvals.integrations.webhooks.receiver import receiver

    call_command("migrate", verbosity=0)
    WebhookSubscription.objects.all().delete()
    manager, _ = Group.objects.get_or_create(name="manager")
    requester, _ = User.objects.get_or_create(username="bench-api-requester")
    reviewer, _ = User.objects.get_or_create(username="bench-api-reviewer")
    reviewer.groups.add(manager)
    if not Task.objects.filter(instance__definition__key="bench-api").exists():
        definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    stamp = time.strftime("%Y%m%d%H%M%S")

    def client(user: User) -> Client:
        _, plaintext = token_create(
            user=user, name=f"bench {stamp}", actor=user, now=timezone.now()
        )
        return Client(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    as_requester, as_reviewer = client(requester), client(reviewer)
    start_url = "/api/v1/workflows/bench-api/instances/"
    started: list[int] = []

    def api_start(index: int, key: str | None = None) -> None:
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        response = as_requester.post(
            start_url, {"context": {"n": index}}, content_type="application/json", **headers
        )
        assert response.status_code == 201, response.content
        started.append(response.json()["id"])

    def service_start(index: int) -> None:
        started.append(
            instance_start(
                definition_key="bench-api",
                context={"n": index},
                actor=requester,
                now=timezone.now(),
            ).pk
        )

    def task_of(instance_id: int) -> int:
        return Task.objects.get(instance_id=instance_id, status="open").pk

    lines = [
        "| what | requests | p50 ms | p95 ms |",
        "|---|---:|---:|---:|",
    ]
    timed(20, api_start)  # warm-up: statechart and role caches, connection
    lines.append(row("API start", timed(count, api_start)))
    lines.append(row("service start (instance_start)", timed(count, service_start)))
    lines.append(
        row("API start with Idempotency-Key", timed(count, lambda i: api_start(i, f"{stamp}-{i}")))
    )
    lines.append(row("API replay of a key", timed(count, lambda i: api_start(i, f"{stamp}-{i}"))))

    open_ids = list(dict.fromkeys(started))  # replays answered with ids already there

    def api_decide_task(task_id: int) -> None:
        response = as_reviewer.post(
            f"/api/v1/tasks/{task_id}/decide/",
            {"decision": "APPROVE"},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content

    def service_decide_task(task_id: int) -> None:
        task_decide(task_id=task_id, event="APPROVE", actor=reviewer, now=timezone.now())

    def api_decide(index: int) -> None:
        api_decide_task(task_of(open_ids.pop()))

    def service_decide(index: int) -> None:
        service_decide_task(task_of(open_ids.pop()))

    lines.append(row("API decide", timed(count, api_decide)))
    next_task = task_of(open_ids.pop())
    with CaptureQueriesContext(connection) as api_queries:
        api_decide_task(next_task)
    if os.environ.get("BENCH_SHOW_QUERIES"):
        for query in api_queries.captured_queries:
            print(query["sql"][:160])
    lines.append(row("service decide (task_decide)", timed(count, service_decide)))
    next_task = task_of(open_ids.pop())
    with CaptureQueriesContext(connection) as service_queries:
        service_decide_task(next_task)
    # Only the in-transaction fan-out is timed here: the after-commit hand-off to the broker is
    # switched off, so no worker message is left behind (deliveries are timed below).
    import approvals.integrations.webhooks.services as webhook_services

    webhook_services.dispatch = lambda attempts: None
    subscriptions = [
        WebhookSubscription.objects.create(
            name=f"bench {n}",
            url="http://127.0.0.1:9/",
            secret="s" * 32,
            event_types=["task.decided", "instance.state_changed", "instance.completed"],
            is_active=True,
        )
        for n in range(3)
    ]
    lines.append(row("service decide, 3 webhook subscriptions", timed(count, service_decide)))
    next_task = task_of(open_ids.pop())
    with CaptureQueriesContext(connection) as fanout_queries:
        service_decide_task(next_task)

    def counted(captured: CaptureQueriesContext) -> int:
        return sum(
            1
            for q in captured.captured_queries
            if q["sql"] not in ("BEGIN", "COMMIT")
            and not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
        )

    with receiver("s" * 32) as hook:
        for subscription in subscriptions:
            subscription.url = hook.url
            subscription.save()
        pending = list(
            WebhookDelivery.objects.filter(status="pending").values_list("pk", flat=True)[:count]
        )
        lines.append(
            row(
                "webhook delivery to a local receiver",
                timed(
                    len(pending),
                    lambda i: webhook_attempt(
                        delivery_id=pending[i], attempt=1, now=timezone.now()
                    ),
                ),
            )
        )
    WebhookSubscription.objects.filter(pk__in=[s.pk for s in subscriptions]).delete()
    print("\n".join(lines))
    print()
    print("queries, one warm decision (without transaction control and savepoints):")
    print(f"  API decide: {counted(api_queries)}")
    print(f"  task_decide, no subscription: {counted(service_queries)}")
    print(f"  task_decide, 3 subscriptions: {counted(fanout_queries)}")


if __name__ == "__main__":
    main()
