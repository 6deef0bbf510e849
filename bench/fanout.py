"""A parent that starts N children with `foreach` and a concurrency limit, to completion, on
PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_fanout \
        .venv/bin/python bench/fanout.py [--children 1000] [--limit 50]

In one process, through the services (no Celery, no network): the parent's start, then the
delivery of its `subflow.start` message (which starts the first `limit` children), then until
the parent is done: one live child is approved by a person (task_decide) and its
`subflow.ended` message delivered (which records its result and starts the next item's
child). After every delivery the live children are counted, so the report says whether any
ran over the limit. Printed: wall time, children per second, queries per delivery that
starts a child, the most children live at once. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, ensure_database, setup_django  # noqa: E402

CHILD: dict[str, Any] = {
    "id": "bench-fanout-child",
    "title": "Item {n}",
    "initial": "work",
    "form": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
    "states": {
        "work": {"meta": {"task": {"roles": ["bench-worker"]}}, "on": {"APPROVE": "done"}},
        "done": {"type": "final", "meta": {"output": {"square": "n * n"}}},
    },
}


def parent(limit: int) -> dict[str, Any]:
    return {
        "id": "bench-fanout",
        "title": "Fan-out",
        "initial": "fan_out",
        "form": {"type": "object", "properties": {"items": {"type": "array"}}},
        "states": {
            "fan_out": {
                "invoke": {
                    "src": "workflow:bench-fanout-child",
                    "foreach": "items",
                    "limit": limit,
                    "input": {"n": "item"},
                    "onDone": "done",
                    "onError": "failed",
                }
            },
            "done": {"type": "final"},
            "failed": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    url = database_url("bench/fanout.py")
    ensure_database(url)
    os.environ.setdefault("DEBUG", "false")
    setup_django()

    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import User
    from approvals.automation.subflows import subflow_execute
    from approvals.models import InstanceStatus, OutboxMessage, OutboxStatus, Task, WorkflowInstance
    from approvals.services.definitions import definition_import
    from approvals.services.instances import instance_start
    from approvals.services.task_work import task_decide

    call_command("migrate", verbosity=0)
    worker_role, _ = Group.objects.get_or_create(name="bench-worker")
    requester, _ = User.objects.get_or_create(username="bench-fanout-requester")
    worker, _ = User.objects.get_or_create(username="bench-fanout-worker")
    worker.groups.add(worker_role)
    now = timezone.now()
    definition_import(config=CHILD, actor=None, publish=True, now=now)
    definition_import(config=parent(args.limit), actor=None, publish=True, now=now)

    def deliver(message: OutboxMessage) -> tuple[str, int]:
        # The query log is a bounded deque: emptied first, so that a count is never cut short.
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as queries:
            outcome = subflow_execute(message_id=message.pk, now=timezone.now())
        return outcome, len(queries)

    def pending(instance_id: int, topic: str) -> OutboxMessage | None:
        return (
            OutboxMessage.objects.filter(
                instance_id=instance_id, topic=topic, status=OutboxStatus.PENDING
            )
            .order_by("pk")
            .first()
        )

    started = time.perf_counter()
    top = instance_start(
        definition_key="bench-fanout",
        context={"items": list(range(args.children))},
        actor=requester,
        now=timezone.now(),
    )
    first = pending(top.pk, "subflow.start")
    assert first is not None
    _, first_queries = deliver(first)
    children = WorkflowInstance.objects.filter(parent=top)
    live = children.filter(status=InstanceStatus.ACTIVE)
    most_live = live.count()
    per_start: list[int] = []
    deliveries = 0.0
    while True:
        task = (
            Task.objects.filter(instance__parent=top, status__in=("open", "claimed"))
            .order_by("pk")
            .first()
        )
        if task is None:
            break
        task_decide(task_id=task.pk, event="APPROVE", actor=worker, now=timezone.now())
        ended = pending(task.instance_id, "subflow.ended")
        assert ended is not None
        before = children.count()
        tick = time.perf_counter()
        _, queries = deliver(ended)
        deliveries += time.perf_counter() - tick
        if children.count() > before:
            per_start.append(queries)
        most_live = max(most_live, live.count())
    wall = time.perf_counter() - started
    top.refresh_from_db()

    print(f"children: {args.children}, limit: {args.limit}")
    print(f"parent: {top.status} at {top.state}; children started: {children.count()}")
    print(
        f"wall time: {wall:.1f} s ({args.children / wall:.1f} children/s, each started, "
        "decided by a person and reported to the parent)"
    )
    print(f"time in the parent's deliveries (end + next start): {deliveries:.1f} s")
    print(
        f"queries of the first delivery ({min(args.limit, args.children)} starts): "
        f"{first_queries}, {first_queries / max(min(args.limit, args.children), 1):.1f} a child"
    )
    if per_start:
        print(
            f"queries of a delivery that records an end and starts the next child: "
            f"median {sorted(per_start)[len(per_start) // 2]}, max {max(per_start)}"
        )
    print(f"most children live at once: {most_live} (limit {args.limit})")


if __name__ == "__main__":
    main()
