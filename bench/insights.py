"""The insights pages on PostgreSQL at 1,000,000 tasks and 300,000 requests: p50/p95 per page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_insights \
        .venv/bin/python bench/insights.py [--scale 1.0] [--repeat 10] [--keep-db]

The database is dropped and recreated (its name must contain "bench"; `--keep-db` reuses one
already seeded at the same scale), migrated, then filled with plain SQL (INSERT ... SELECT
generate_series): three published workflows of the same shape (review, with a 2-day SLA and a
director to escalate to → approve → approved / rejected, review → changes → review again),
`300,000 * scale` requests started over the last 12 months, two thirds of them sent back once for
changes (four tasks instead of two: 3.33 tasks a request, `1,000,000 * scale` tasks), a fifth of
the reviews past their deadline, reminded; about 4 % still open (started in the
last 14 days); a decision for every decided task, a candidate role for every task and one audit
`transition` event per move (what the heat map counts). `--scale 0.1` is the quick run.

Timed through the Django test client as a process owner, each `--repeat` times after a warm-up:
`/insights/` (all workflows) over 30 and 90 days, `/insights/<key>/` over 30 and 90 days and over
a date range of 12 months, the per-step CSV, the waiting list of a step and
`GET /api/v1/insights/<key>/`. Printed: p50/p95 per page and PASS/MISS against 500 ms; nothing is
asserted. The cost the insights add to a decision: none is written by the services (the figures
are computed from the rows they already write), only the four indexes of 0013_insights, which
`bench/transitions.py` measures as part of every insert.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, recreate_database, setup_django  # noqa: E402

REQUESTS = 300_000
BATCH = 50_000
TARGET_P95_MS = 500.0
KEYS = ("bench-po", "bench-access", "bench-refund")
USERS = 200


def flow(key: str) -> dict[str, Any]:
    return {
        "id": key,
        "title": key.replace("-", " ").title(),
        "initial": "review",
        "form": {"type": "object", "properties": {"title": {"type": "string"}}},
        "states": {
            "review": {
                "meta": {
                    "task": {
                        "roles": ["bench-manager"],
                        "sla": "P2D",
                        "remind": ["P1D"],
                        "escalate_to": ["bench-director"],
                    }
                },
                "on": {"APPROVE": "approve", "REJECT": "rejected", "REQUEST_CHANGES": "changes"},
            },
            "changes": {
                "meta": {"task": {"requester": True}},
                "on": {"RESUBMIT": "review", "WITHDRAW": "withdrawn"},
            },
            "approve": {
                "meta": {"task": {"roles": ["bench-finance"], "sla": "P3D"}},
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
            "withdrawn": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
    }


def prepare() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    for name in ("bench-manager", "bench-director", "bench-finance"):
        Group.objects.get_or_create(name=name)
    now = timezone.now()
    definitions = {}
    for key in KEYS:
        found = definition_import(config=flow(key), actor=None, publish=True, now=now)
        definitions[key] = found.pk
    User = get_user_model()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """INSERT INTO accounts_user
                   (password, is_superuser, username, first_name, last_name, email, is_staff,
                    is_active, date_joined, slack_user_id)
               SELECT '!', false, 'bench-user-' || n, 'User', 'No. ' || n, '', false, true,
                      now(), ''
               FROM generate_series(1, %s) n
               ON CONFLICT (username) DO NOTHING""",
            [USERS],
        )
    owner, _ = User.objects.get_or_create(
        username="bench-owner", defaults={"is_superuser": True, "is_staff": True}
    )
    users = list(
        User.objects.filter(username__startswith="bench-user-").values_list("pk", flat=True)
    )
    roles = dict(Group.objects.filter(name__startswith="bench-").values_list("name", "pk"))
    return {"owner": owner, "users": users, "definitions": definitions, "roles": roles}


SEED = """
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT n AS iid,
       (%(defs)s::bigint[])[1 + (n %% 3)] AS definition_id,
       (%(keys)s::text[])[1 + (n %% 3)] AS workflow_key,
       (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] AS requester_id,
       (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] AS reviewer_id,
       (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] AS approver_id,
       random() < 0.667 AS rework,
       random() AS r_outcome,
       random() < 0.2 AS late,
       now() - random() * interval '365 days' AS t0,
       random() * interval '20 hours' + interval '10 minutes' AS wait1,
       random() * interval '40 hours' + interval '10 minutes' AS work1,
       random() * interval '50 hours' + interval '1 hour' AS fix,
       random() * interval '10 hours' + interval '10 minutes' AS wait2,
       random() * interval '30 hours' + interval '10 minutes' AS work2,
       random() * interval '60 hours' + interval '30 minutes' AS approve_time
FROM generate_series(%(first)s::bigint, %(last)s::bigint) n
"""

TIMES = """
CREATE TEMP TABLE timed ON COMMIT DROP AS
SELECT s.*,
       -- the last 4 %% (started in the last 14 days) are still waiting for the approval
       (s.t0 > now() - interval '14 days' AND s.r_outcome < 0.5) AS open,
       s.t0 + s.wait1 AS r1_claimed,
       s.t0 + s.wait1 + s.work1 + CASE WHEN s.late THEN interval '2 days' ELSE interval '0' END
           AS r1_closed,
       s.t0 + s.wait1 + s.work1 + s.fix AS r2_created
FROM seed s
"""

INSERTS = [
    """
    INSERT INTO approvals_workflowinstance
        (id, definition_id, requester_id, title, business_key, workflow_key, context, state,
         status, version, audit_seq, audit_head, created_at, updated_at, completed_at)
    SELECT t.iid, t.definition_id, t.requester_id, 'Request ' || t.iid, '', t.workflow_key,
           '{}'::jsonb,
           CASE WHEN t.open THEN 'approve'
                WHEN t.r_outcome < 0.75 THEN 'approved'
                WHEN t.r_outcome < 0.93 THEN 'rejected' ELSE 'withdrawn' END,
           CASE WHEN t.open THEN 'active'
                WHEN t.r_outcome < 0.75 THEN 'completed'
                WHEN t.r_outcome < 0.93 THEN 'rejected'
                WHEN t.r_outcome < 0.97 THEN 'withdrawn' ELSE 'cancelled' END,
           4, 6, '', t.t0, t.t0,
           CASE WHEN t.open THEN NULL ELSE e.ended END
    FROM timed t, LATERAL (
        SELECT (CASE WHEN t.rework THEN t.r2_created + t.wait2 + t.work2 ELSE t.r1_closed END)
               + t.approve_time AS ended) e
    """,
    # first review: decided (changes when it is sent back), escalated when late a third of the time
    """
    INSERT INTO approvals_task
        (id, instance_id, definition_id, search_text, state, visit, label, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         escalation_level, created_at, claimed_at, closed_at, due_at)
    SELECT 4 * t.iid, t.iid, t.definition_id, 'request', 'review', 2, 'Review', 'done',
           false, true, 'any', 'decision', CASE WHEN t.late THEN 1 ELSE 0 END, t.reviewer_id,
           0, t.t0, t.r1_claimed, t.r1_closed, t.t0 + interval '2 days'
    FROM timed t
    """,
    # the requester's changes, and the second review
    """
    INSERT INTO approvals_task
        (id, instance_id, definition_id, search_text, state, visit, label, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         escalation_level, created_at, claimed_at, closed_at, due_at)
    SELECT 4 * t.iid + 1, t.iid, t.definition_id, 'request', 'changes', 4, 'Changes', 'done',
           true, false, 'any', 'decision', 0, t.requester_id, 0,
           t.r1_closed, t.r1_closed, t.r2_created, NULL
    FROM timed t WHERE t.rework
    UNION ALL
    SELECT 4 * t.iid + 2, t.iid, t.definition_id, 'request', 'review', 6, 'Review', 'done',
           false, true, 'any', 'decision', 0, t.reviewer_id, 0,
           t.r2_created, t.r2_created + t.wait2, t.r2_created + t.wait2 + t.work2,
           t.r2_created + interval '2 days'
    FROM timed t WHERE t.rework
    """,
    # the approval: open for the open requests
    """
    INSERT INTO approvals_task
        (id, instance_id, definition_id, search_text, state, visit, label, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         escalation_level, created_at, claimed_at, closed_at, due_at)
    SELECT 4 * t.iid + 3, t.iid, t.definition_id, 'request', 'approve', 8, 'Approve',
           CASE WHEN t.open THEN 'open' ELSE 'done' END, false, true, 'any', 'decision', 0,
           CASE WHEN t.open THEN NULL ELSE t.approver_id END, 0,
           s.at, CASE WHEN t.open THEN NULL ELSE s.at + interval '1 hour' END,
           CASE WHEN t.open THEN NULL ELSE s.at + t.approve_time END, s.at + interval '3 days'
    FROM timed t, LATERAL (
        SELECT CASE WHEN t.rework THEN t.r2_created + t.wait2 + t.work2 ELSE t.r1_closed END
               AS at) s
    """,
    """
    INSERT INTO approvals_task_candidate_groups (task_id, group_id)
    SELECT t.id, CASE t.state WHEN 'approve' THEN %(finance)s ELSE %(manager)s END
    FROM approvals_task t
    WHERE t.instance_id BETWEEN %(first)s AND %(last)s AND NOT t.for_requester
    """,
    """
    INSERT INTO approvals_decision (task_id, actor_id, event, comment, data, decided_at)
    SELECT t.id, t.assignee_id,
           CASE WHEN t.state = 'changes' THEN 'RESUBMIT'
                WHEN t.state = 'review' AND t.visit = 2 AND ti.rework THEN 'REQUEST_CHANGES'
                WHEN ti.r_outcome >= 0.75 AND ti.r_outcome < 0.93 AND t.state = 'approve'
                    THEN 'REJECT'
                ELSE 'APPROVE' END,
           '', '{}'::jsonb, t.closed_at
    FROM approvals_task t JOIN timed ti ON ti.iid = t.instance_id
    WHERE t.instance_id BETWEEN %(first)s AND %(last)s AND t.status = 'done'
    """,
    # one transition event per move (the heat map's counts)
    """
    INSERT INTO approvals_auditevent
        (instance_id, seq, at, actor_name, channel, event, from_state, to_state, data,
         prev_hash, hash, mac, mac_key_id)
    SELECT t.instance_id, t.visit + 1, t.closed_at, '', 'web', 'transition', t.state,
           CASE WHEN t.state = 'changes' THEN 'review'
                WHEN t.state = 'review' AND t.visit = 2 AND ti.rework THEN 'changes'
                WHEN t.state = 'review' THEN 'approve'
                WHEN ti.r_outcome < 0.75 THEN 'approved' ELSE 'rejected' END,
           '{}'::jsonb, '', md5(t.id::text), '', ''
    FROM approvals_task t JOIN timed ti ON ti.iid = t.instance_id
    WHERE t.instance_id BETWEEN %(first)s AND %(last)s AND t.status = 'done'
    """,
]


def seed(world: dict[str, Any], requests: int) -> float:
    from django.db import connection, transaction

    started = time.perf_counter()
    for first in range(1, requests + 1, BATCH):
        last = min(first + BATCH - 1, requests)
        params = {
            "first": first,
            "last": last,
            "defs": [world["definitions"][k] for k in KEYS],
            "keys": list(KEYS),
            "users": world["users"],
            "nusers": len(world["users"]),
            "finance": world["roles"]["bench-finance"],
            "manager": world["roles"]["bench-manager"],
        }
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT setseed(%s)", [(first % 1000) / 1000])
            cur.execute(SEED, params)
            cur.execute(TIMES)
            for sql in INSERTS:
                cur.execute(sql, params)
        print(f"  seeded {last:,} requests", flush=True)
    with connection.cursor() as cur:
        for table in ("approvals_workflowinstance", "approvals_task", "approvals_decision"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        for table in (
            "approvals_workflowinstance",
            "approvals_task",
            "approvals_task_candidate_groups",
            "approvals_decision",
            "approvals_auditevent",
        ):
            cur.execute(f"VACUUM {table}")
        cur.execute("ANALYZE")
    return time.perf_counter() - started


def counts() -> tuple[int, int]:
    from approvals.models import Task, WorkflowInstance

    return Task.objects.count(), WorkflowInstance.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 300,000 requests")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per page")
    parser.add_argument("--keep-db", action="store_true", help="reuse a seeded database")
    args = parser.parse_args()
    url = database_url("bench/insights.py")
    if not args.keep_db:
        recreate_database(url)
    setup_django()
    world = prepare()
    requests = int(REQUESTS * args.scale)
    tasks, instances = counts()
    spent = 0.0
    if instances == 0:
        spent = seed(world, requests)
        tasks, instances = counts()
    print(f"{tasks:,} tasks, {instances:,} requests ({spent:.0f} s to seed)", flush=True)

    from datetime import timedelta

    from django.test import Client
    from django.utils import timezone

    client = Client()
    client.force_login(world["owner"])
    key = KEYS[0]
    today = timezone.localdate()
    year = f"since={(today - timedelta(days=364)).isoformat()}&until={today.isoformat()}"
    pages = [
        ("all workflows, 30 days", "/insights/?days=30"),
        ("all workflows, 90 days", "/insights/?days=90"),
        ("one workflow, 30 days", f"/insights/{key}/?days=30"),
        ("one workflow, 90 days", f"/insights/{key}/?days=90"),
        ("one workflow, 12 months", f"/insights/{key}/?{year}"),
        ("per-step CSV, 90 days", f"/insights/{key}/?days=90&download=steps"),
        ("workflows CSV, 90 days", "/insights/?days=90&download=workflows"),
        ("waiting in approve", f"/insights/{key}/waiting/?state=approve"),
        ("API, 30 days", f"/api/v1/insights/{key}/"),
        ("API, 12 months", f"/api/v1/insights/{key}/?{year}"),
    ]
    print(f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8}  target p95 < {TARGET_P95_MS:.0f} ms")
    for label, path in pages:
        response = client.get(path)  # warm-up
        assert response.status_code == 200, (path, response.status_code)
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        p50 = statistics.median(times)
        p95 = statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else p50
        verdict = "PASS" if p95 < TARGET_P95_MS else "MISS"
        print(f"{label:<28} {p50:8.0f} {p95:8.0f}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
