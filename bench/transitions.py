"""Transitions per second through the engine services, against raw SQL writes on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench \
        .venv/bin/python bench/transitions.py [--instances N] [--clients 1 8]

A two-step flow (review by a manager, then a director) is published and N requests per client
count are driven start → APPROVE → APPROVE through `instance_start` and `task_decide`, each call
one transition. The same three transitions are then written with plain psycopg (lock the
instance row, update it, append an audit event, close the task, insert the next task) on rows
created for that purpose, so the ratio shows what the engine costs over the bare writes.
Figures are printed with PASS/MISS against the targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import conninfo, database_url, ensure_database, setup_django  # noqa: E402

FLOW_KEY = "bench-two-step"
FLOW: dict[str, Any] = {
    "id": FLOW_KEY,
    "title": "Bench two-step",
    "initial": "review",
    "states": {
        "review": {"meta": {"task": {"roles": ["manager"]}}, "on": {"APPROVE": "director"}},
        "director": {"meta": {"task": {"roles": ["director"]}}, "on": {"APPROVE": "approved"}},
        "approved": {"type": "final"},
    },
}

TARGET_RATIO = 0.3
TARGET_QUERIES = 10
TARGET_P95_MS = 20.0
# Instances whose two decisions are query-counted in the 1-client run (after warm-up, so the
# statechart and role caches are filled as they are in a running process).
CAPTURED = range(5, 8)


# ----- setup


@dataclass
class Fixture:
    definition_id: int
    requester: Any
    managers: list[Any]
    directors: list[Any]


def prepare(clients: int) -> Fixture:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone

    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    manager_role, _ = Group.objects.get_or_create(name="manager")
    director_role, _ = Group.objects.get_or_create(name="director")
    users = get_user_model().objects

    def user(name: str, role: Group | None = None) -> Any:
        found, _ = users.get_or_create(username=name, defaults={"is_active": True})
        if role is not None:
            found.groups.add(role)
        return found

    requester = user("bench-requester")
    managers = [user(f"bench-manager-{i}", manager_role) for i in range(clients)]
    directors = [user(f"bench-director-{i}", director_role) for i in range(clients)]
    definition = definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    return Fixture(definition.pk, requester, managers, directors)


# ----- measuring


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds per transition
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


def run_threads(clients: int, total: int, work: Callable[[int, int, list[float]], None]) -> Result:
    """`work(client, count, latencies)` in one thread per client; wall time over all."""
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def body(client: int) -> None:
        try:
            barrier.wait()
            work(client, shares[client], per_thread[client])
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Result([x for lat in per_thread for x in lat], elapsed)


@dataclass
class Captured:
    to_task: list[list[str]] = field(default_factory=list)  # decision that opens the next task
    final: list[list[str]] = field(default_factory=list)  # decision that completes


def engine_work(fx: Fixture, captured: Captured | None) -> Callable[[int, int, list[float]], None]:
    def work(client: int, count: int, latencies: list[float]) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django.utils import timezone

        from approvals.models import Task, TaskStatus
        from approvals.services.instances import instance_start
        from approvals.services.task_work import task_decide

        manager, director = fx.managers[client], fx.directors[client]
        clock = time.perf_counter
        try:
            for n in range(count):
                t0 = clock()
                instance = instance_start(
                    definition_key=FLOW_KEY,
                    context={},
                    actor=fx.requester,
                    now=timezone.now(),
                    title=f"bench {client}/{n}",
                )
                latencies.append(clock() - t0)
                for actor, bucket in ((manager, "to_task"), (director, "final")):
                    # Finding the open task is the caller's lookup, not part of the transition.
                    task_id = Task.objects.filter(
                        instance=instance, status=TaskStatus.OPEN
                    ).values_list("pk", flat=True)[0]
                    capture = captured is not None and n in CAPTURED
                    ctx = CaptureQueriesContext(connection) if capture else None
                    t0 = clock()
                    if ctx is not None:
                        with ctx:
                            task_decide(
                                task_id=task_id, event="APPROVE", actor=actor, now=timezone.now()
                            )
                    else:
                        task_decide(
                            task_id=task_id, event="APPROVE", actor=actor, now=timezone.now()
                        )
                    latencies.append(clock() - t0)
                    if ctx is not None and captured is not None:
                        getattr(captured, bucket).append([q["sql"] for q in ctx.captured_queries])
        finally:
            connection.close()

    return work


def chain_hash(body: dict[str, Any], prev: str) -> str:
    text = json.dumps({**body, "prev": prev}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


RAW_AUDIT = """
    INSERT INTO approvals_auditevent
        (instance_id, seq, at, actor_id, actor_name, channel, event, from_state, to_state,
         task_id, data, prev_hash, hash)
    VALUES (%s, %s, now(), %s, %s, 'web', %s, %s, %s, %s, %s, %s, %s)
"""
RAW_TASK = """
    INSERT INTO approvals_task
        (instance_id, state, visit, label, status, for_requester, forbid_requester, rule,
         kind, reminders_sent, escalation_level, created_at)
    VALUES (%s, %s, %s, '', 'open', false, true, 'any', 'decision', 0, 0, now())
    RETURNING id
"""


def raw_work(url: str, fx: Fixture) -> Callable[[int, int, list[float]], None]:
    """The bare writes of the same three transitions, in one transaction each."""

    def work(client: int, count: int, latencies: list[float]) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        manager, director = fx.managers[client], fx.directors[client]
        clock = time.perf_counter
        with psycopg.connect(**conninfo(url)) as conn:
            for n in range(count):
                t0 = clock()
                with conn.transaction():
                    iid = conn.execute(
                        """INSERT INTO approvals_workflowinstance
                               (definition_id, requester_id, title, business_key, context, state,
                                status, version, audit_seq, audit_head, created_at, updated_at)
                           VALUES (%s, %s, %s, '', '{}', 'review', 'active', 1, 2, '', now(), now())
                           RETURNING id""",
                        [fx.definition_id, fx.requester.pk, f"raw {client}/{n}"],
                    ).fetchone()[0]
                    task_id = conn.execute(RAW_TASK, [iid, "review", 1]).fetchone()[0]
                    h1 = chain_hash({"i": iid, "seq": 1, "event": "instance.started"}, "")
                    h2 = chain_hash({"i": iid, "seq": 2, "event": "task.created"}, h1)
                    conn.execute(
                        RAW_AUDIT,
                        [
                            iid,
                            1,
                            fx.requester.pk,
                            "bench-requester",
                            "instance.started",
                            "",
                            "review",
                            None,
                            Jsonb({}),
                            "",
                            h1,
                        ],
                    )
                    conn.execute(
                        RAW_AUDIT,
                        [
                            iid,
                            2,
                            fx.requester.pk,
                            "bench-requester",
                            "task.created",
                            "",
                            "review",
                            task_id,
                            Jsonb({}),
                            h1,
                            h2,
                        ],
                    )
                    conn.execute(
                        "UPDATE approvals_workflowinstance SET audit_head=%s WHERE id=%s",
                        [h2, iid],
                    )
                latencies.append(clock() - t0)
                steps = (("review", "director", manager), ("director", "approved", director))
                for source, target, actor in steps:
                    final = target == "approved"
                    t0 = clock()
                    with conn.transaction():
                        seq, head = conn.execute(
                            "SELECT audit_seq, audit_head FROM approvals_workflowinstance "
                            "WHERE id=%s FOR UPDATE",
                            [iid],
                        ).fetchone()
                        seq += 1
                        new_head = chain_hash(
                            {"i": iid, "seq": seq, "from": source, "to": target}, head
                        )
                        conn.execute(
                            "UPDATE approvals_workflowinstance SET state=%s, status=%s, "
                            "version=version+1, audit_seq=%s, audit_head=%s, updated_at=now(), "
                            "completed_at=CASE WHEN %s THEN now() END WHERE id=%s",
                            [target, "completed" if final else "active", seq, new_head, final, iid],
                        )
                        conn.execute(
                            RAW_AUDIT,
                            [
                                iid,
                                seq,
                                actor.pk,
                                actor.username,
                                "transition",
                                source,
                                target,
                                task_id,
                                Jsonb({"event": "APPROVE"}),
                                head,
                                new_head,
                            ],
                        )
                        conn.execute(
                            "UPDATE approvals_task SET status='done', assignee_id=%s, "
                            "closed_at=now() WHERE id=%s",
                            [actor.pk, task_id],
                        )
                        if not final:
                            task_id = conn.execute(RAW_TASK, [iid, target, seq]).fetchone()[0]
                    latencies.append(clock() - t0)

    return work


# ----- report


def statements(queries: list[str]) -> int:
    return sum(1 for q in queries if q.strip().upper() not in {"BEGIN", "COMMIT"})


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=300, help="per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    url = database_url("bench/transitions.py")
    ensure_database(url)
    setup_django()
    fx = prepare(max(args.clients))

    captured = Captured()
    rows: list[tuple[int, Result, Result]] = []
    for clients in args.clients:
        capture = captured if clients == 1 and not captured.final else None
        engine = run_threads(clients, args.instances, engine_work(fx, capture))
        raw = run_threads(clients, args.instances, raw_work(url, fx))
        rows.append((clients, engine, raw))
        print(
            f"{clients} client(s): engine {engine.rate:.0f}/s, raw {raw.rate:.0f}/s "
            f"({len(engine.latencies)} transitions each)",
            flush=True,
        )

    q_task = len(captured.to_task[-1]) if captured.to_task else 0
    q_final = len(captured.final[-1]) if captured.final else 0
    print()
    print(f"{args.instances} instances per client count, 3 transitions each")
    print(
        f"{'clients':>7} {'engine/s':>9} {'raw/s':>7} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'raw p50':>8} {'raw p95':>8}  ratio>={TARGET_RATIO}"
    )
    for clients, engine, raw in rows:
        ratio = engine.rate / raw.rate
        print(
            f"{clients:>7} {engine.rate:>9.0f} {raw.rate:>7.0f} {ratio:>6.2f} "
            f"{engine.percentile_ms(50):>7.2f} {engine.percentile_ms(95):>7.2f} "
            f"{raw.percentile_ms(50):>8.2f} {raw.percentile_ms(95):>8.2f}  "
            f"{mark(ratio >= TARGET_RATIO)}"
        )
    one = next((e for c, e, _ in rows if c == 1), None)
    if one is not None:
        p95 = one.percentile_ms(95)
        print(
            f"p95 at 1 client: {p95:.2f} ms (target < {TARGET_P95_MS:.0f})  "
            f"{mark(p95 < TARGET_P95_MS)}"
        )
    if captured.final:
        # BEGIN and COMMIT are transaction control, not queries: the target counts statements.
        s_task, s_final = statements(captured.to_task[-1]), statements(captured.final[-1])
        print(
            f"queries per decision: {s_task} (to the next task), {s_final} (final) "
            f"(target <= {TARGET_QUERIES})  {mark(max(s_task, s_final) <= TARGET_QUERIES)}"
        )
        print(f"  with BEGIN/COMMIT: {q_task}, {q_final}")
        for label, samples in (("to the next task", captured.to_task), ("final", captured.final)):
            print(f"\nqueries of one decision ({label}):")
            for i, query in enumerate(samples[-1], 1):
                print(f"  {i:>2}. {' '.join(query.split())[:220]}")


if __name__ == "__main__":
    main()
