"""Decisions per second through the engine services, against raw SQL writes and django-viewflow.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench \
        .venv/bin/python bench/transitions.py [--instances N] [--clients 1 8]
            [--clients-as processes|threads] [--peer DIR | --no-peer] [--keep-db]
            [--profile N] [--otel [--rounds R]]

A two-step flow (review by a manager, then a director) is published. For each client count,
N requests are started with `instance_start` (timed on their own), then decided
APPROVE → APPROVE with `task_decide`, stage by stage as the peer does (every request's manager
task, then every director task). Decisions/s count decisions only: 2N decisions over the wall
time of the decision phase, from the first client's start to the last client's end, clients
connected beforehand; p50/p95 are over single `task_decide` calls. The same three transitions
are then written with plain psycopg (lock the instance row, update it, append an audit event,
close the task, insert the next task) on rows created for that purpose, so the ratio
engine ÷ raw shows what the engine costs over the bare writes. Queries per decision are counted
in a separate, untimed pass after a warm-up (statechart and role caches filled as in a running
process), so the timed runs carry no query log.

The database is dropped and created afresh first (only a name containing "bench", and not
while another session uses it; `--keep-db` keeps its rows), as the peer recreates its own, so
that every run starts from the same tables.

With REDIS_URL set the run is in production mode: notifications and live events are pushed to
the Redis channel layer after each commit, as a web process or a worker does. Without it the
embedded default's push goes to the in-memory layer of this process, which nobody listens to.

Then, unless `--no-peer`, the django-viewflow peer (`--peer DIR`, default
../shared/peers/viewflow next to the repository) runs its own `run.sh` against the same
PostgreSQL server, database `viewflow_peer`, with the same client counts and as many processes
(requests) per client count (`-n N --skip-inbox`), and one table sets both side by side. The
peer's decision is viewflow's claim + execute (its UI's two requests); ours is one
`task_decide` on a task the actor's role may decide. Targets are printed with PASS/MISS and
never asserted.

Clients: with more than one, each client is a forked OS process with its own connection (the
default, `--clients-as processes`), as the peer forks its clients; `--clients-as threads` runs
them as threads of this process, one connection each, as this script did before. Both were
measured on this 2-core machine (2026-12-02, baseline code, fresh database, 200 requests,
three runs of each, alternating, while other sessions ran their tests): 8 processes decided
93-105/s (p95 118-128 ms), 8 threads 69-82/s (p95 158-160 ms). Threads distort the figure
through the GIL: their CPU time over the wall time ("client CPU" in the output) sat at
0.84-0.85 of a core, the one core the GIL allows less its hand-offs, while the processes used
1.31-1.34 cores. (Measured on a database grown by earlier runs, where a slow query made every
decision wait, threads came out ahead instead: the GIL only shows once the database is quick.)
A single client always runs in one thread of this process.

`--otel` measures nothing else: decisions at 1 client, alternately without tracing and metrics
and with them (every span exported by OTLP over HTTP, batched, to a local receiver; the metrics
counted), `--rounds` times each; it prints the ratio with ÷ without (target ≥ 0.9).

`--profile N` measures nothing else: it warms up, then runs N decisions at 1 client under
cProfile and prints the top 25 functions by cumulative and by own (total) time.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import math
import multiprocessing
import os
import pstats
import statistics
import subprocess
import sys
import sysconfig
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import (  # noqa: E402
    conninfo,
    database_url,
    ensure_database,
    recreate_database,
    setup_django,
)

# The environment as given, before setup_django() sets Django's variables for this process:
# the peer is a Django project of its own and must not inherit them.
GIVEN_ENV = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}

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

TARGET_RATIO = 0.3  # engine ÷ raw transitions/s
TARGET_QUERIES = 10  # statements of a decision that opens the next task, BEGIN/COMMIT aside
TARGET_P95_MS = {1: 15.0, 8: 100.0}  # decision p95 by client count
TARGET_PEER_RATIO = 2.0  # Signoff ÷ viewflow decisions/s
WARMUP = 10  # requests driven through before anything is timed or counted
QUERY_SAMPLES = 3  # requests whose two decisions are query-counted (the last one is shown)
PEER_DB = "viewflow_peer"
TXN_CONTROL = {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"}


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


# ----- running clients


def percentile_ms(latencies: Sequence[float], q: int) -> float:
    """Linear interpolation between closest ranks (numpy's default, as the peer computes it)."""
    if len(latencies) < 2:
        return latencies[0] * 1000 if latencies else math.nan
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1] * 1000


@dataclass
class Phase:
    """One timed phase of one side at one client count."""

    latencies: list[float] = field(default_factory=list)  # seconds per call
    elapsed: float = 0.0  # wall: first client's start to last client's end
    cpu: float = 0.0  # CPU seconds the clients' own threads used (PostgreSQL not included)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def p(self, q: int) -> float:
        return percentile_ms(self.latencies, q)

    @property
    def cores(self) -> float:
        """Client CPU over wall time: near 1.0 with threads means the GIL is the limit."""
        return self.cpu / self.elapsed if self.elapsed else 0.0


def both(a: Phase, b: Phase) -> Phase:
    """Two phases as one (starts and decisions together, the mixed figure)."""
    return Phase(a.latencies + b.latencies, a.elapsed + b.elapsed, a.cpu + b.cpu)


# work(client, part, state) -> (latencies, payload); setup() -> state, called before the clock
Work = Callable[[int, list[Any], Any], tuple[list[float], Any]]


def _client(
    i: int, part: list[Any], setup: Callable[[], Any], work: Work, barrier: Any
) -> tuple[float, float, float, list[float], Any]:
    from django.db import connections

    try:
        state = setup()
        try:
            barrier.wait(timeout=300)
            start, cpu = time.perf_counter(), time.thread_time()
            latencies, payload = work(i, part, state)
            return start, time.perf_counter(), time.thread_time() - cpu, latencies, payload
        finally:
            close = getattr(state, "close", None)
            if close is not None:
                close()
    except BaseException:
        barrier.abort()
        raise
    finally:
        connections.close_all()


def run_clients(
    mode: str, parts: list[list[Any]], work: Work, setup: Callable[[], Any]
) -> tuple[Phase, list[Any]]:
    """`work` over each part in its own client (a thread, or with mode "processes" and more
    than one part a forked process), all released together once connected."""
    if mode == "processes" and len(parts) > 1:
        outcomes = _run_processes(parts, work, setup)
    else:
        outcomes = _run_threads(parts, work, setup)
    elapsed = max(o[1] for o in outcomes) - min(o[0] for o in outcomes)
    cpu = sum(o[2] for o in outcomes)
    return Phase([x for o in outcomes for x in o[3]], elapsed, cpu), [o[4] for o in outcomes]


def _run_threads(parts: list[list[Any]], work: Work, setup: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(parts))
    outcomes: list[Any] = [None] * len(parts)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            outcomes[i] = _client(i, parts[i], setup, work, barrier)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(parts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise next(
            (e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0]
        )
    return outcomes


def _run_processes(parts: list[list[Any]], work: Work, setup: Callable[[], Any]) -> list[Any]:
    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's socket
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(parts))

    def body(i: int) -> None:
        try:
            queue.put((i, _client(i, parts[i], setup, work, barrier), None))
        except BaseException:
            queue.put((i, None, traceback.format_exc()))

    procs = [ctx.Process(target=body, args=(i,)) for i in range(len(parts))]
    for proc in procs:
        proc.start()
    received = [queue.get() for _ in procs]  # before join: a full pipe would block the child
    for proc in procs:
        proc.join()
    failed = [text for _, _, text in received if text]
    if failed:
        real = [t for t in failed if "BrokenBarrierError" not in t.splitlines()[-1]]
        raise RuntimeError("a client failed:\n" + (real or failed)[0])
    return [outcome for _, outcome, _ in sorted(received, key=lambda r: r[0])]


def shares(total: int, clients: int) -> list[list[int]]:
    return [list(range(i, total, clients)) for i in range(clients)]


def connect_django() -> None:
    from django.db import connection

    connection.ensure_connection()


# ----- the engine


def engine_start(fx: Fixture) -> Work:
    def work(client: int, part: list[int], _: Any) -> tuple[list[float], list[int]]:
        from django.utils import timezone

        from approvals.services.instances import instance_start

        clock = time.perf_counter
        latencies, ids = [], []
        for n in part:
            t0 = clock()
            instance = instance_start(
                definition_key=FLOW_KEY,
                context={},
                actor=fx.requester,
                now=timezone.now(),
                title=f"bench {client}/{n}",
            )
            latencies.append(clock() - t0)
            ids.append(instance.pk)
        return latencies, ids

    return work


def open_tasks(instance_ids: list[int]) -> dict[int, int]:
    """instance id → its open task, one query (the caller's lookup, not part of a decision)."""
    from approvals.models import Task, TaskStatus

    found = dict(
        Task.objects.filter(instance_id__in=instance_ids, status=TaskStatus.OPEN).values_list(
            "instance_id", "pk"
        )
    )
    assert len(found) == len(instance_ids), (len(found), len(instance_ids))
    return found


def engine_decide(fx: Fixture) -> Work:
    """Both decisions of every request in `part`, stage by stage (as the peer decides)."""

    def work(client: int, part: list[int], _: Any) -> tuple[list[float], None]:
        from django.utils import timezone

        from approvals.services.task_work import task_decide

        clock = time.perf_counter
        latencies: list[float] = []
        for actor in (fx.managers[client], fx.directors[client]):
            tasks = open_tasks(part)
            for instance_id in part:
                t0 = clock()
                task_decide(
                    task_id=tasks[instance_id], event="APPROVE", actor=actor, now=timezone.now()
                )
                latencies.append(clock() - t0)
        return latencies, None

    return work


@dataclass
class Captured:
    to_task: list[str] = field(default_factory=list)  # decision that opens the next task
    final: list[str] = field(default_factory=list)  # decision that completes


def drive_untimed(fx: Fixture, count: int, capture: bool = False) -> Captured:
    """`count` requests started and decided in this thread, untimed; with `capture` the SQL of
    the last one's two decisions is kept."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from approvals.services.task_work import task_decide

    ids = engine_start(fx)(0, list(range(count)), None)[1]
    captured = Captured()
    for actor, bucket in ((fx.managers[0], "to_task"), (fx.directors[0], "final")):
        tasks = open_tasks(ids)
        for instance_id in ids:
            with CaptureQueriesContext(connection) as ctx:
                task_decide(
                    task_id=tasks[instance_id], event="APPROVE", actor=actor, now=timezone.now()
                )
            if capture:
                setattr(captured, bucket, [q["sql"] for q in ctx.captured_queries])
    return captured


# ----- raw SQL


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
        (instance_id, definition_id, search_text, state, visit, label, status, for_requester,
         forbid_requester, rule, kind, reminders_sent, escalation_level, created_at)
    SELECT i.id, i.definition_id, lower(i.title || E'\n' || i.business_key || E'\n'), %s, %s,
           '', 'open', false, true, 'any', 'decision', 0, 0, now()
    FROM approvals_workflowinstance i WHERE i.id = %s
    RETURNING id
"""


def audit(
    conn: Any,
    instance_id: int,
    seq: int,
    actor: Any,
    event: str,
    source: str,
    target: str,
    task_id: int | None,
    data: dict[str, Any],
    chain: tuple[str, str],  # previous hash, this row's hash
) -> None:
    """One hash-chained audit row, written as the engine writes it."""
    from psycopg.types.json import Jsonb

    values = [instance_id, seq, actor.pk, actor.username, event, source, target, task_id]
    conn.execute(RAW_AUDIT, [*values, Jsonb(data), *chain])


def raw_connect(url: str) -> Callable[[], Any]:
    def setup() -> Any:
        import psycopg

        return psycopg.connect(**conninfo(url))

    return setup


def raw_start(fx: Fixture) -> Work:
    """The bare writes of a start, one transaction each; payload (instance, task) pairs."""

    def work(client: int, part: list[int], conn: Any) -> tuple[list[float], list[tuple[int, int]]]:
        clock = time.perf_counter
        latencies, pairs = [], []
        for n in part:
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
                task_id = conn.execute(RAW_TASK, ["review", 1, iid]).fetchone()[0]
                h1 = chain_hash({"i": iid, "seq": 1, "event": "instance.started"}, "")
                h2 = chain_hash({"i": iid, "seq": 2, "event": "task.created"}, h1)
                for seq, event, tid, prev, head in (
                    (1, "instance.started", None, "", h1),
                    (2, "task.created", task_id, h1, h2),
                ):
                    chain = (prev, head)
                    audit(conn, iid, seq, fx.requester, event, "", "review", tid, {}, chain)
                conn.execute(
                    "UPDATE approvals_workflowinstance SET audit_head=%s WHERE id=%s", [h2, iid]
                )
            latencies.append(clock() - t0)
            pairs.append((iid, task_id))
        return latencies, pairs

    return work


def raw_decide(fx: Fixture) -> Work:
    """The bare writes of the two decisions, stage by stage, one transaction each."""

    def work(client: int, part: list[tuple[int, int]], conn: Any) -> tuple[list[float], None]:
        clock = time.perf_counter
        latencies: list[float] = []
        steps = (
            ("review", "director", fx.managers[client]),
            ("director", "approved", fx.directors[client]),
        )
        for source, target, actor in steps:
            final = target == "approved"
            nexts = []
            for iid, task_id in part:
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
                    data = {"event": "APPROVE"}
                    chain = (head, new_head)
                    audit(conn, iid, seq, actor, "transition", source, target, task_id, data, chain)
                    conn.execute(
                        "UPDATE approvals_task SET status='done', assignee_id=%s, "
                        "closed_at=now() WHERE id=%s",
                        [actor.pk, task_id],
                    )
                    if not final:
                        task_id = conn.execute(RAW_TASK, [target, seq, iid]).fetchone()[0]
                latencies.append(clock() - t0)
                nexts.append((iid, task_id))
            part = nexts
        return latencies, None

    return work


# ----- one client count


@dataclass
class Level:
    clients: int
    start: Phase
    decide: Phase
    raw_start: Phase
    raw_decide: Phase


def measure(fx: Fixture, url: str, clients: int, instances: int, mode: str) -> Level:
    start, ids = run_clients(mode, shares(instances, clients), engine_start(fx), connect_django)
    decide, _ = run_clients(mode, ids, engine_decide(fx), connect_django)
    raw_start_phase, pairs = run_clients(
        mode, shares(instances, clients), raw_start(fx), raw_connect(url)
    )
    raw_decide_phase, _ = run_clients(mode, pairs, raw_decide(fx), raw_connect(url))
    return Level(clients, start, decide, raw_start_phase, raw_decide_phase)


# ----- profile


def profile(fx: Fixture, decisions: int) -> None:
    from django.db import connection

    drive_untimed(fx, WARMUP)
    requests = max(1, math.ceil(decisions / 2))
    ids = engine_start(fx)(0, list(range(requests)), None)[1]
    work = engine_decide(fx)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    latencies, _ = work(0, ids, None)
    profiler.disable()
    elapsed = time.perf_counter() - t0
    connection.close()
    print(
        f"profiled {len(latencies)} decisions at 1 client: {len(latencies) / elapsed:.1f}/s "
        f"under cProfile, p50 {percentile_ms(latencies, 50):.2f} ms (the profiler slows Python)"
    )
    stats = pstats.Stats(profiler)
    paths = sysconfig.get_paths()
    prefixes = [(paths["purelib"] + "/", ""), (paths["stdlib"] + "/", "stdlib/")]
    prefixes.append((str(ROOT) + "/", ""))
    for key, title in (("cumulative", "cumulative time"), ("tottime", "total (own) time")):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(key).print_stats(25)
        text = out.getvalue()
        for prefix, short in prefixes:
            text = text.replace(prefix, short)
        body = text[text.index("   ncalls") :] if "   ncalls" in text else text
        print(f"\ntop 25 by {title}:\n{body.rstrip()}")


# ----- the peer


@dataclass
class Peer:
    version: str
    rate: dict[int, float]
    p50: dict[int, float]
    p95: dict[int, float]
    queries_avg: float  # per decision without BEGIN/COMMIT/SAVEPOINT/RELEASE
    queries_with_txn: float
    to_task: int | None  # the same, per node, from its SQL trace
    final: int | None
    notes: list[str]


def peer_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + PEER_DB, "", ""))


def run_peer(directory: Path, url: str, clients: list[int], instances: int) -> Peer | None:
    """The peer's run.sh on the same server; None (and why on stderr) if it fails."""
    script = directory / "run.sh"
    if not script.exists():
        print(f"peer: no {script}", file=sys.stderr)
        return None
    results = Path(os.environ.get("PEER_RESULTS", "/tmp/peer-viewflow/results"))
    env = {
        **GIVEN_ENV,
        "DATABASE_URL": peer_url(url),
        "PEER_NO_FALLBACK": "1",  # the same PostgreSQL server or nothing, never SQLite
        "PEER_RESULTS": str(results),
    }
    command = [str(script), "-n", str(instances), "--clients", ",".join(map(str, clients))]
    command.append("--skip-inbox")
    print(f"\n$ DATABASE_URL={env['DATABASE_URL']} {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=directory, env=env, stdout=subprocess.PIPE, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        print(f"peer: run.sh exited {done.returncode}", file=sys.stderr)
        return None
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        print(f"peer: last line is not JSON: {lines[-1][:200]}", file=sys.stderr)
        return None
    m1 = data["m1"]
    by = {int(k): v["viewflow"] for k, v in m1["by_clients"].items()}
    queries = m1["viewflow_queries"]
    notes = list(data.get("notes", []))
    if data.get("db", {}).get("vendor") != "postgresql":
        notes.append(f"peer ran on {data.get('db', {}).get('vendor')}, not PostgreSQL")
    per_node = peer_statements(results / "decision_sql-postgresql.txt")
    return Peer(
        version=data.get("viewflow_version", "?"),
        rate={k: v["per_s"] for k, v in by.items()},
        p50={k: v["p50_ms"] for k, v in by.items()},
        p95={k: v["p95_ms"] for k, v in by.items()},
        queries_avg=queries["per_decision_excl_txn_control"],
        queries_with_txn=queries["per_decision"],
        to_task=per_node.get("manager_approval"),
        final=per_node.get("director_approval"),
        notes=notes,
    )


def peer_statements(trace: Path) -> dict[str, int]:
    """Statements per node in the peer's trace of one process, transaction control aside."""
    counts: dict[str, int] = {}
    node = None
    try:
        lines = trace.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        if line.startswith("==== decision on "):
            node = line.split()[3]
            counts[node] = 0
        elif node and line.strip() and line.split()[0].upper() not in TXN_CONTROL:
            counts[node] += 1
    return counts


# ----- report


def statements(queries: list[str], control: set[str] | None = None) -> int:
    skip = control if control is not None else {"BEGIN", "COMMIT"}
    return sum(1 for q in queries if q.split()[0].upper() not in skip)


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def plural(clients: int) -> str:
    return "client" if clients == 1 else "clients"


def report_signoff(levels: list[Level], captured: Captured, instances: int, mode: str) -> None:
    how = "forked processes" if mode == "processes" else "threads"
    print(f"\n{instances} requests per client count; more than one client = {how}")
    print("\ndecisions alone (task_decide; starts excluded, as the peer counts)")
    print(
        f"{'clients':>7} {'decisions':>9} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'raw/s':>7} {'raw p50':>8} {'raw p95':>8} {'engine/raw':>10} {'client CPU':>10}"
    )
    for lv in levels:
        d, r = lv.decide, lv.raw_decide
        print(
            f"{lv.clients:>7} {len(d.latencies):>9} {d.rate:>7.1f} {d.p(50):>7.2f} {d.p(95):>7.2f}"
            f" {r.rate:>7.0f} {r.p(50):>8.2f} {r.p(95):>8.2f} {d.rate / r.rate:>10.3f}"
            f" {d.cores:>10.2f}"
        )
    print("(client CPU: cores the Python clients kept busy during the decisions, PostgreSQL aside)")
    for lv in levels:
        print(f"decisions/s at {lv.clients} {plural(lv.clients)}: {lv.decide.rate:.1f}")

    print("\nstarts alone (instance_start)")
    print(f"{'clients':>7} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'raw/s':>7}")
    for lv in levels:
        s = lv.start
        print(
            f"{lv.clients:>7} {s.rate:>7.1f} {s.p(50):>7.2f} {s.p(95):>7.2f} "
            f"{lv.raw_start.rate:>7.0f}"
        )

    print("\nall transitions mixed (start + 2 decisions per request, the earlier table)")
    print(
        f"{'clients':>7} {'engine/s':>9} {'raw/s':>7} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'raw p50':>8} {'raw p95':>8}  ratio>={TARGET_RATIO}"
    )
    for lv in levels:
        engine, raw = both(lv.start, lv.decide), both(lv.raw_start, lv.raw_decide)
        ratio = engine.rate / raw.rate
        print(
            f"{lv.clients:>7} {engine.rate:>9.0f} {raw.rate:>7.0f} {ratio:>6.2f} "
            f"{engine.p(50):>7.2f} {engine.p(95):>7.2f} {raw.p(50):>8.2f} {raw.p(95):>8.2f}  "
            f"{mark(ratio >= TARGET_RATIO)}"
        )

    print()
    for lv in levels:
        target = TARGET_P95_MS.get(lv.clients)
        if target is not None:
            p95 = lv.decide.p(95)
            print(
                f"decision p95 at {lv.clients} {plural(lv.clients)}: {p95:.2f} ms "
                f"(target < {target:.0f})  {mark(p95 < target)}"
            )
    # BEGIN and COMMIT are transaction control, not queries: the target counts statements.
    s_task, s_final = statements(captured.to_task), statements(captured.final)
    print(
        f"queries per decision: {s_task} (to the next task), {s_final} (final) "
        f"(target <= {TARGET_QUERIES})  {mark(s_task <= TARGET_QUERIES)}"
    )
    print(f"  with BEGIN/COMMIT: {len(captured.to_task)}, {len(captured.final)}")
    for label, sample in (("to the next task", captured.to_task), ("final", captured.final)):
        print(f"\nqueries of one decision ({label}):")
        for i, query in enumerate(sample, 1):
            print(f"  {i:>2}. {' '.join(query.split())[:220]}")


def report_peer(
    levels: list[Level], captured: Captured, peer: Peer, mode: str
) -> list[tuple[str, float, bool]]:
    for lv in levels:
        rate = peer.rate.get(lv.clients)
        if rate is not None:
            print(f"peer decisions/s at {lv.clients} {plural(lv.clients)}: {rate:.1f}")
    for note in peer.notes:
        print(f"peer note: {note}")
    print(f"\ndecisions side by side: Signoff vs django-viewflow {peer.version}")
    print(f"{'':<36} {'Signoff':>9} {'viewflow':>9} {'S ÷ vf':>7}  target")
    verdicts: list[tuple[str, float, bool]] = []

    def row(label: str, ours: float, theirs: float | None, fmt: str, target: str = "") -> None:
        if theirs is None:
            print(f"{label:<36} {ours:>9{fmt}} {'n/a':>9}")
            return
        ratio = ours / theirs if theirs else math.nan
        verdict = ""
        if target:
            ok = ratio >= TARGET_PEER_RATIO
            verdict = f">= {TARGET_PEER_RATIO:.1f}  {mark(ok)}"
            verdicts.append((f"Signoff ÷ viewflow decisions/s at {target}", ratio, ok))
        print(f"{label:<36} {ours:>9{fmt}} {theirs:>9{fmt}} {ratio:>7.2f}  {verdict}")

    for lv in levels:
        c = f"{lv.clients} {plural(lv.clients)}"
        row(f"decisions/s at {c}", lv.decide.rate, peer.rate.get(lv.clients), ".1f", c)
    for lv in levels:
        c = f"{lv.clients} {plural(lv.clients)}"
        row(f"decision p50 ms at {c}", lv.decide.p(50), peer.p50.get(lv.clients), ".2f")
        row(f"decision p95 ms at {c}", lv.decide.p(95), peer.p95.get(lv.clients), ".2f")
    s_task = statements(captured.to_task, TXN_CONTROL)
    s_final = statements(captured.final, TXN_CONTROL)
    row("queries, decision to the next task", s_task, peer.to_task, ".0f")
    row("queries, final decision", s_final, peer.final, ".0f")
    row("queries per decision (mean)", (s_task + s_final) / 2, peer.queries_avg, ".1f")
    with_txn = (len(captured.to_task) + len(captured.final)) / 2
    row("  with BEGIN/COMMIT/SAVEPOINT/RELEASE", with_txn, peer.queries_with_txn, ".1f")
    print(
        "(queries without transaction control; viewflow's decision is claim + execute, two "
        "transactions; Signoff's is one task_decide)"
    )
    if any(lv.clients > 1 for lv in levels):
        if mode == "threads":
            print("(several clients: Signoff's are threads, viewflow's forked processes)")
        else:
            print("(several clients: forked processes with their own connections on both sides)")
    return verdicts


def report_targets(
    levels: list[Level], captured: Captured, peer_verdicts: list[tuple[str, float, bool]] | None
) -> None:
    print("\ntargets (printed, never asserted)")
    rows: list[tuple[str, str, bool]] = []
    s_task = statements(captured.to_task)
    rows.append(
        (
            f"queries, decision to the next task <= {TARGET_QUERIES}",
            str(s_task),
            s_task <= TARGET_QUERIES,
        )
    )
    for lv in levels:
        target = TARGET_P95_MS.get(lv.clients)
        if target is not None:
            p95 = lv.decide.p(95)
            rows.append(
                (
                    f"decision p95 at {lv.clients} {plural(lv.clients)} < {target:.0f} ms",
                    f"{p95:.2f} ms",
                    p95 < target,
                )
            )
    if peer_verdicts is None:
        rows.append(("Signoff ÷ viewflow decisions/s >= 2.0", "not run", False))
    else:
        for label, ratio, ok in peer_verdicts:
            rows.append((f"{label} >= {TARGET_PEER_RATIO:.1f}", f"{ratio:.2f}", ok))
    for label, figure, ok in rows:
        print(f"  {label:<52} {figure:>10}  {mark(ok)}")


# ----- --otel: the cost of tracing and metrics on a decision


TARGET_OTEL_RATIO = 0.9  # decisions/s with tracing and metrics ÷ without


class _OtlpReceiver:
    """A local OTLP/HTTP endpoint that takes every export (200), counting the bytes."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received = self.received = [0, 0]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received[0] += 1
                received[1] += len(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def otel_compare(fx: Fixture, instances: int, rounds: int) -> None:
    """Decisions at 1 client, alternately without and with observability: without is tracing
    off and the metrics' counting replaced by nothing; with is every span exported by OTLP
    (batched, to a local receiver) and the metrics counted, as in production."""
    # Each client connects afresh, so that a phase's connections are instrumented or not.
    from django.db import connections
    from opentelemetry import trace

    from approvals import metrics, tracing
    from workflow_app.observability import tracing as setup_tracing

    connections["default"].settings_dict["OPTIONS"].pop("pool", None)
    connections.close_all()
    receiver = _OtlpReceiver()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    from django.conf import settings

    settings.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url
    setup_tracing.setup("bench")
    count_run = metrics.count_run

    def decide(on: bool) -> Phase:
        # Off: no instrumentation at all (new connections are plain psycopg ones, the pool
        # being off), our spans off, nothing counted.
        if on:
            setup_tracing.instrument()
            tracing.turn_on()
        else:
            setup_tracing.uninstrument()
        metrics.count_run = count_run if on else (lambda *args, **kwargs: None)
        _, ids = run_clients("threads", shares(instances, 1), engine_start(fx), connect_django)
        cpu = time.process_time()
        phase, _ = run_clients("threads", ids, engine_decide(fx), connect_django)
        if on:  # the export of this phase's spans is part of its cost
            trace.get_tracer_provider().force_flush()
        # CPU of the whole process (the exporter's thread too) per decision: what tracing
        # adds, much less disturbed than the wall time by other work on the machine.
        phase.cpu = (time.process_time() - cpu) / len(phase.latencies)
        return phase

    results: dict[bool, list[Phase]] = {False: [], True: []}
    for n in range(rounds):
        for on in (False, True) if n % 2 == 0 else (True, False):
            phase = decide(on)
            results[on].append(phase)
            label = "with tracing + metrics" if on else "without"
            print(
                f"round {n + 1}, {label}: {phase.rate:.1f} decisions/s, "
                f"p50 {phase.p(50):.1f} ms, p95 {phase.p(95):.1f} ms, "
                f"CPU {phase.cpu * 1000:.2f} ms per decision",
                flush=True,
            )
    metrics.count_run = count_run
    off = statistics.median(p.rate for p in results[False])
    on = statistics.median(p.rate for p in results[True])
    off_cpu = statistics.median(p.cpu for p in results[False])
    on_cpu = statistics.median(p.cpu for p in results[True])
    ratio = on / off if off else math.nan
    cpu_ratio = off_cpu / on_cpu if on_cpu else math.nan
    print(
        f"\nmedian of {rounds} rounds of {2 * instances} decisions at 1 client: without "
        f"{off:.1f}/s, with tracing + metrics {on:.1f}/s; ratio {ratio:.2f} "
        f"(target >= {TARGET_OTEL_RATIO}) {mark(ratio >= TARGET_OTEL_RATIO)}"
    )
    print(
        f"CPU per decision (this process, exporter included): without {off_cpu * 1000:.2f} ms, "
        f"with {on_cpu * 1000:.2f} ms; ratio without / with {cpu_ratio:.2f} "
        f"(target >= {TARGET_OTEL_RATIO}) {mark(cpu_ratio >= TARGET_OTEL_RATIO)}"
    )
    print(f"OTLP exports received: {receiver.received[0]} ({receiver.received[1]} bytes)")


def load() -> str:
    """The load average: above the core count, other work shared the machine with the run."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=300, help="requests per client count")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--clients-as",
        choices=["processes", "threads"],
        default="processes",
        help="how several clients run (default: forked processes, as the peer's)",
    )
    parser.add_argument(
        "--peer",
        type=Path,
        default=ROOT.parent / "shared" / "peers" / "viewflow",
        help="the django-viewflow peer benchmark (default: ../shared/peers/viewflow)",
    )
    parser.add_argument("--no-peer", action="store_true", help="do not run the peer")
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="keep the database's rows from earlier runs (default: drop and recreate it)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="only profile N decisions at 1 client with cProfile (nothing else is measured)",
    )
    parser.add_argument(
        "--otel",
        action="store_true",
        help="only compare decisions with tracing (OTLP) and metrics against without",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--otel: rounds of each")
    args = parser.parse_args()
    url = database_url("bench/transitions.py")
    if args.keep_db:
        ensure_database(url)
    else:
        recreate_database(url)
    setup_django()
    fx = prepare(max(args.clients))

    if args.profile:
        profile(fx, args.profile)
        return
    if args.otel:
        print(f"machine: {os.cpu_count()} cores; {load()} before the run", flush=True)
        drive_untimed(fx, WARMUP)
        otel_compare(fx, args.instances, args.rounds)
        print(f"\n{load()} after the run")
        return

    state = "rows of earlier runs kept" if args.keep_db else "recreated empty"
    print(f"database {conninfo(url)['dbname']}: {state}")
    print(f"machine: {os.cpu_count()} cores; {load()} before the run", flush=True)
    drive_untimed(fx, WARMUP)
    captured = drive_untimed(fx, QUERY_SAMPLES, capture=True)
    levels: list[Level] = []
    for clients in args.clients:
        lv = measure(fx, url, clients, args.instances, args.clients_as)
        levels.append(lv)
        print(
            f"{clients} {plural(clients)}: decisions {lv.decide.rate:.1f}/s, starts "
            f"{lv.start.rate:.1f}/s; raw decisions {lv.raw_decide.rate:.0f}/s, raw starts "
            f"{lv.raw_start.rate:.0f}/s",
            flush=True,
        )
    report_signoff(levels, captured, args.instances, args.clients_as)

    verdicts = None
    failed = False
    if not args.no_peer:
        sys.stdout.flush()
        peer = run_peer(args.peer.resolve(), url, args.clients, args.instances)
        if peer is None:
            failed = True
            print("peer: not compared (see above)")
        else:
            verdicts = report_peer(levels, captured, peer, args.clients_as)
    report_targets(levels, captured, verdicts)
    print(f"\n{load()} after the run")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
