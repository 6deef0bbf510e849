"""The SLA sweep on PostgreSQL: escalating 100,000 overdue tasks among 1,000,000 not yet due.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_sla \
        .venv/bin/python bench/sla_sweep.py [--not-due 1000000] [--due 100000]

Rows are made with INSERT ... SELECT generate_series (one request per task, in a published
flow whose review task has `sla: PT1H` and `escalate_to: [director]`), then:

1. the empty sweep: `sla_sweep` when nothing is due, over the 1,000,000 live tasks (median of
   20 runs; it must stay small however many tasks wait);
2. the engine: one `sla_sweep` escalating the due tasks through `task_escalate_overdue`'s
   steps (claim with FOR UPDATE SKIP LOCKED, re-check, close the task, open the next level's
   task with its role, audit event, outbox message, instance), `SWEEP_BATCH` of them to a
   transaction;
3. raw SQL: as many new overdue tasks, escalated by a psycopg loop doing the same writes
   (the same claim, re-check, UPDATE, INSERTs and hash-chained audit event), no ORM: once one
   escalation to a transaction (the baseline the target was set against), and once as many to
   a transaction as the engine's sweep puts in one (`SWEEP_BATCH`), so that the engine's own
   cost is also compared with like;

and prints escalations/s for each, the ratios, and PASS/MISS against the targets (ratio ≥ 0.3,
empty sweep < 10 ms). Nothing is asserted. The database is emptied of approvals rows first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import conninfo, database_url, ensure_database, setup_django  # noqa: E402

FLOW_KEY = "bench-sla"
FLOW: dict[str, Any] = {
    "id": FLOW_KEY,
    "title": "Bench SLA",
    "initial": "review",
    "states": {
        "review": {
            "meta": {"task": {"roles": ["manager"], "sla": "PT1H", "escalate_to": ["director"]}},
            "on": {"APPROVE": "approved"},
        },
        "approved": {"type": "final"},
    },
}
TARGET_RATIO = 0.3
TARGET_EMPTY_MS = 10.0


def prepare() -> tuple[int, int, int, int]:
    """Migrate, empty the approvals tables, publish the flow; (definition, requester, manager
    role, director role) ids."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    with transaction.atomic(), connection.cursor() as cursor:
        # The audit table refuses DELETE and TRUNCATE (append-only triggers); the bench connects
        # as a superuser and resets it in replica mode, where no trigger fires.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "TRUNCATE approvals_failedaction, approvals_auditevent, approvals_outboxmessage, "
            "approvals_task_candidate_groups, approvals_decision, approvals_timer, "
            "approvals_task, approvals_branch, approvals_workflowinstance CASCADE"
        )
    manager, _ = Group.objects.get_or_create(name="manager")
    director, _ = Group.objects.get_or_create(name="director")
    requester, _ = get_user_model().objects.get_or_create(username="bench-requester")
    definition = definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    return definition.pk, requester.pk, manager.pk, director.pk


def insert_tasks(
    conn: Any, *, count: int, due_at: datetime, definition: int, requester: int, role: int
) -> None:
    """`count` requests in the review state, each with one live task due at `due_at`."""
    now = datetime.now(UTC)
    conn.execute(
        """
        CREATE TEMP TABLE new_instances ON COMMIT DROP AS
        WITH made AS (
            INSERT INTO approvals_workflowinstance
                (definition_id, requester_id, title, business_key, context, state, status,
                 version, audit_seq, audit_head, created_at, updated_at)
            SELECT %(definition)s, %(requester)s, 'bench ' || n, '', '{}'::jsonb, 'review',
                   'active', 0, 0, '', %(now)s, %(now)s
            FROM generate_series(1, %(count)s) AS n
            RETURNING id
        ) SELECT id FROM made
        """,
        {"definition": definition, "requester": requester, "now": now, "count": count},
    )
    conn.execute(
        """
        WITH made AS (
            INSERT INTO approvals_task
                (instance_id, definition_id, search_text, state, visit, label, status,
                 for_requester, forbid_requester, rule, escalation_level, created_at, due_at,
                 kind, sla_started_at, reminders_sent)
            SELECT i.id, i.definition_id, lower(i.title || E'\n' || i.business_key || E'\n'),
                   'review', 1, '', 'open', false, true, 'any', 0, %(now)s, %(due)s,
                   'decision', %(now)s, 0
            FROM new_instances n JOIN approvals_workflowinstance i ON i.id = n.id
            RETURNING id
        )
        INSERT INTO approvals_task_candidate_groups (task_id, group_id)
        SELECT id, %(role)s FROM made
        """,
        {"now": now, "due": due_at, "role": role},
    )


def empty_sweep_ms(runs: int, now: datetime) -> tuple[float, dict[str, int]]:
    from approvals.services.sla import sla_sweep

    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = sla_sweep(now=now)
        times.append(time.perf_counter() - t0)
    assert result is not None
    return statistics.median(times) * 1000, result.as_dict()


def engine_escalate() -> tuple[float, dict[str, int]]:
    from django.utils import timezone

    from approvals.services.sla import sla_sweep

    t0 = time.perf_counter()
    result = sla_sweep(now=timezone.now())
    return time.perf_counter() - t0, result.as_dict()


def raw_escalate(url: str, director_role: int, *, per_transaction: int) -> tuple[float, int]:
    """The same claim and writes as task_escalate_overdue, in plain psycopg, committing every
    `per_transaction` escalations."""
    import psycopg

    escalated = 0
    with psycopg.connect(**conninfo(url)) as conn:
        now = datetime.now(UTC)
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM approvals_task WHERE status IN ('open', 'claimed') "
                "AND breached_at IS NULL AND due_at <= %s ORDER BY due_at, id",
                [now],
            )
        ]
        conn.commit()
        t0 = time.perf_counter()
        for n, task_id in enumerate(ids, start=1):
            escalated += _raw_escalate_one(conn, task_id, now, director_role)
            if n % per_transaction == 0:
                conn.commit()
        conn.commit()
        return time.perf_counter() - t0, escalated


def _raw_escalate_one(conn: Any, task_id: int, now: datetime, director_role: int) -> bool:
    claimed = conn.execute(
        "SELECT i.id, i.audit_seq, i.audit_head, i.requester_id "
        "FROM approvals_workflowinstance i JOIN approvals_task t "
        "ON t.instance_id = i.id WHERE t.id = %s FOR UPDATE OF i SKIP LOCKED",
        [task_id],
    ).fetchone()
    if claimed is None:
        return False
    instance_id, seq, head, requester = claimed
    task = conn.execute(
        "SELECT status, due_at, escalation_level, assignee_id, breached_at, state, "
        "visit, definition_id, search_text FROM approvals_task WHERE id = %s",
        [task_id],
    ).fetchone()
    status, due_at, level, assignee, breached, state, visit, definition, words = task
    if status not in ("open", "claimed") or breached or due_at > now:
        return False
    conn.execute(
        "UPDATE approvals_task SET status = 'escalated', closed_at = %s "
        "WHERE id = %s AND status = %s",
        [now, task_id, status],
    )
    new_due = now + timedelta(hours=1)
    (new_id,) = conn.execute(
        "INSERT INTO approvals_task (instance_id, definition_id, search_text, "
        "state, visit, label, status, for_requester, forbid_requester, rule, "
        "escalation_level, created_at, due_at, kind, sla_started_at, "
        "reminders_sent, previous_id) VALUES (%s, %s, %s, %s, %s, '', 'open', "
        "false, true, 'any', %s, %s, %s, 'decision', %s, 0, %s) RETURNING id",
        [
            *(instance_id, definition, words, state, visit, level + 1),
            *(now, new_due, now, task_id),
        ],
    ).fetchone()
    conn.execute(
        "INSERT INTO approvals_task_candidate_groups (task_id, group_id) VALUES (%s, %s)",
        [new_id, director_role],
    )
    data = {
        "reason": "escalated by SLA",
        "from_task": task_id,
        "level": level + 1,
        "roles": ["director"],
        "previous_roles": ["manager"],
        "previous_assignee": assignee,
        "due_at": new_due.isoformat(),
    }
    body = {
        "instance": instance_id,
        "seq": seq + 1,
        "at": now.isoformat(),
        "data": data,
        "prev": head,
    }
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    conn.execute(
        "INSERT INTO approvals_auditevent (instance_id, seq, at, actor_name, channel, "
        "event, from_state, to_state, task_id, data, prev_hash, hash) VALUES "
        "(%s, %s, %s, '', 'sla', 'task.escalated', '', %s, %s, %s, %s, %s)",
        [instance_id, seq + 1, now, state, new_id, json.dumps(data), head, digest],
    )
    payload = {
        "task": new_id,
        "previous": task_id,
        "level": level + 1,
        "roles": ["director"],
        "previous_assignee": assignee,
        "requester": requester,
        "state": state,
        "flagged": False,
    }
    conn.execute(
        "INSERT INTO approvals_outboxmessage (topic, instance_id, payload, "
        "idempotency_key, status, created_at, available_at, attempts, last_error) "
        "VALUES ('task.escalated', %s, %s, %s, 'pending', %s, %s, 0, '')",
        [
            instance_id,
            json.dumps(payload),
            f"{instance_id}:{seq + 1}:raw:{new_id}",
            now,
            now,
        ],
    )
    conn.execute(
        "UPDATE approvals_workflowinstance SET audit_seq = %s, audit_head = %s, "
        "version = version + 1, updated_at = %s WHERE id = %s",
        [seq + 1, digest, now, instance_id],
    )
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--not-due", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument(
        "--server-side-binding",
        action="store_true",
        help="Django's psycopg server-side binding (prepared statements) for the engine run",
    )
    args = parser.parse_args()
    if args.not_due < 0 or args.due < 1:
        sys.exit("--not-due must be ≥ 0 and --due ≥ 1")
    url = database_url("bench/sla_sweep.py")
    ensure_database(url)
    setup_django(server_side_binding=args.server_side_binding)
    import psycopg

    definition, requester, manager, director = prepare()
    later = datetime.now(UTC) + timedelta(days=30)
    overdue = datetime.now(UTC) - timedelta(hours=2)
    t0 = time.perf_counter()
    with psycopg.connect(**conninfo(url)) as conn:
        for start in range(0, args.not_due, 200_000):
            with conn.transaction():
                insert_tasks(
                    conn,
                    count=min(200_000, args.not_due - start),
                    due_at=later,
                    definition=definition,
                    requester=requester,
                    role=manager,
                )
        with conn.transaction():
            insert_tasks(
                conn,
                count=args.due,
                due_at=overdue,
                definition=definition,
                requester=requester,
                role=manager,
            )
    with psycopg.connect(**conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE approvals_task")
        conn.execute("VACUUM ANALYZE approvals_workflowinstance")
    took = time.perf_counter() - t0
    print(f"rows: {args.not_due:,} tasks not due, {args.due:,} due ({took:.0f} s to insert)")

    # Warm the caches (statechart, roles, query plans) with a sweep before anything is due.
    empty_sweep_ms(3, now=overdue - timedelta(hours=1))
    engine_s, result = engine_escalate()
    engine_rate = result["escalated"] / engine_s
    print(f"engine: escalated {result['escalated']:,} in {engine_s:.1f} s = {engine_rate:,.0f}/s")
    print(f"  sweep result: {result}")

    from approvals.services.sla import SWEEP_BATCH

    raw_rates = {}
    for per_transaction in (1, SWEEP_BATCH):
        with psycopg.connect(**conninfo(url)) as conn, conn.transaction():
            insert_tasks(
                conn,
                count=args.due,
                due_at=overdue,
                definition=definition,
                requester=requester,
                role=manager,
            )
        with psycopg.connect(**conninfo(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE approvals_task")
        raw_s, raw_count = raw_escalate(url, director, per_transaction=per_transaction)
        raw_rates[per_transaction] = raw_count / raw_s
        print(
            f"raw SQL, {per_transaction} to a transaction: escalated {raw_count:,} in "
            f"{raw_s:.1f} s = {raw_rates[per_transaction]:,.0f}/s"
        )

    from django.utils import timezone

    empty_ms, empty_result = empty_sweep_ms(20, now=timezone.now())
    live = args.not_due + 3 * args.due
    print(f"empty sweep over {live:,} live tasks: median {empty_ms:.1f} ms ({empty_result})")
    print()
    print("| target | figure | |")
    print("|---|---|---|")
    for per_transaction, raw_rate in raw_rates.items():
        ratio = engine_rate / raw_rate
        verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
        print(
            f"| ratio engine/raw ({per_transaction} to a raw transaction) ≥ {TARGET_RATIO} | "
            f"{ratio:.2f} | {verdict} |"
        )
    print(
        f"| empty sweep < {TARGET_EMPTY_MS:.0f} ms | {empty_ms:.1f} ms | "
        f"{'PASS' if empty_ms < TARGET_EMPTY_MS else 'MISS'} |"
    )


if __name__ == "__main__":
    main()
