"""Production mode under load: API deciders, a WebSocket storm, and the database connections.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_h_load_bench \\
    REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/load.py [--clients 200] [--seconds 60] [--sockets 300]
            [--pool-size 12] [--pool-timeout 10] [--tasks-per-client 25]

What runs, as deployed: PostgreSQL, Redis (broker, channel layer, throttle counts), two Daphne
processes and one Celery worker (prefork, WORKER_CONCURRENCY=2), started by this script with
DEBUG off. The database (a name with "bench" in it) is dropped and created afresh, migrated and
seeded: `--clients` reviewers, each with a role and a one-step flow of its own ("review" by that
role, then an automated `notify` step the worker runs, then done), `--tasks-per-client` requests
waiting for each reviewer, started by `--sockets` requesters in turn. One role per reviewer
keeps the seeding's "new task" notifications to one person each.

Then, at the same moment:

- `--clients` API clients (httpx, one personal token each, half on each Daphne) approve their
  own tasks one after the other for `--seconds` seconds; every answer's status and time is
  recorded. A 503 is counted and the task tried again after its Retry-After.
- `--sockets` WebSockets (websockets, the requesters' sessions, half on each Daphne) are opened
  at once, all in the same instant, with `?since=0`; a socket is connected when it got `ready`.
  Each decision tells its requester twice: "decided" (committed by Daphne) and "completed"
  (committed by the worker once the notify step ran), both pushed through Redis.
- A sampler counts this database's sessions in pg_stat_activity every 50 ms, by
  application_name ("signoff web", "signoff worker"; its own session excluded).

After the run, once the worker has finished the steps of every decided request (or 120 s), and
the pushes drained (until all arrived, or 10 s without one): every notification row of the
requesters is expected exactly once on its requester's socket. Printed: requests/s,
p50/p95/p99, status counts, peak connections against the configured bound
(2 x DATABASE_POOL_SIZE + WORKER_CONCURRENCY x 1), sockets connected,
notifications lost and duplicated, errors in the servers' logs, and PASS/MISS for the targets
(no 5xx, connections within the bound, every socket connected, nothing lost). Nothing is
asserted. Keep `--pool-size` so that the bound stays far below the server's max_connections
when others share it (12 gives 26).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import conninfo, database_url, recreate_database  # noqa: E402
from push_latency import daphne, wait_http  # noqa: E402

PORTS = (8941, 8942)
WORKER_CONCURRENCY = 2
SECRET = "load-bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
DRAIN_SECONDS = 10.0
WORKER_CATCH_UP_SECONDS = 120.0
SAMPLE_SECONDS = 0.05
# This script's own Django session (seeding, then reading the results): not counted.
BENCH_APPLICATION = "signoff bench"


def environment(pool_size: int, pool_timeout: int) -> dict[str, str]:
    redis = os.environ.get("REDIS_URL", "")
    if not redis:
        sys.exit("bench/load.py runs in production mode: set REDIS_URL too")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="workflow_app.settings",
        DEBUG="false",
        SECRET_KEY=SECRET,
        AUDIT_CHAIN_KEY=SECRET,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Both servers stand for one site behind one address, as behind a load balancer.
        SITE_URL=f"http://127.0.0.1:{PORTS[0]}",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        CELERY_QUEUE="bench-load",
        DATABASE_POOL_SIZE=str(pool_size),
        DATABASE_POOL_TIMEOUT_SECONDS=str(pool_timeout),
        WORKER_CONCURRENCY=str(WORKER_CONCURRENCY),
        # The throttle is not what is measured here.
        API_WRITE_RATE="100000/minute",
        API_READ_RATE="100000/minute",
    )
    return env


def flow(i: int) -> dict[str, Any]:
    return {
        "id": f"bench-load-{i}",
        "title": f"Bench load {i}",
        "initial": "review",
        "states": {
            "review": {
                "meta": {"task": {"roles": [f"bench-load-{i}"]}},
                "on": {"APPROVE": "notifying"},
            },
            "notifying": {
                "invoke": {"src": "notify", "input": {"message": "approved"}, "onDone": "done"},
            },
            "done": {"type": "final"},
        },
    }


def seed_requesters(sockets: int) -> dict[int, str]:
    """The requesters, each signed in: their session keys by user id."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    sessions: dict[int, str] = {}
    for j in range(sockets):
        user = User.objects.create(username=f"bench-requester-{j}", email=f"r{j}@bench.example")
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions[user.pk] = store.session_key
    return sessions


def seed_reviewers(
    env: dict[str, str], reviewers: list[int], requester_ids: list[int], per_client: int
) -> list[tuple[int, str, list[int]]]:
    """In a process of its own: reviewers with a role, a flow and a token each, and their
    waiting tasks, started by the requesters in turn. [(reviewer index, token, task ids)]"""
    setup_django(env)
    from django.contrib.auth.models import Group
    from django.db import connections
    from django.utils import timezone

    from accounts.models import User
    from approvals.models import Task
    from approvals.services.api_tokens import token_create
    from approvals.services.definitions import definition_import
    from approvals.services.instances import instance_start

    now = timezone.now()
    requesters = {u.pk: u for u in User.objects.filter(pk__in=requester_ids)}
    seeded = []
    for i in reviewers:
        reviewer = User.objects.create(username=f"bench-reviewer-{i}")
        reviewer.groups.add(Group.objects.create(name=f"bench-load-{i}"))
        definition_import(config=flow(i), actor=None, publish=True, now=now)
        _, token = token_create(user=reviewer, name="load", actor=reviewer, now=now)
        instances = [
            instance_start(
                definition_key=f"bench-load-{i}",
                context={},
                actor=requesters[requester_ids[(i * per_client + k) % len(requester_ids)]],
                now=now,
                title=f"load {i}.{k}",
            ).pk
            for k in range(per_client)
        ]
        tasks = Task.objects.filter(instance_id__in=instances).values_list("pk", flat=True)
        seeded.append((i, token, sorted(tasks)))
    connections.close_all()
    return seeded


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    connection.settings_dict["OPTIONS"]["application_name"] = BENCH_APPLICATION


def seed(env: dict[str, str], args: argparse.Namespace) -> tuple[list, list, dict]:
    """Tokens of the reviewers, their tasks, the requesters' session keys by user id; the
    reviewers are seeded by --seed-processes processes at once."""
    from concurrent.futures import ProcessPoolExecutor

    sessions = seed_requesters(args.sockets)
    shares = [
        list(range(args.clients))[k :: args.seed_processes] for k in range(args.seed_processes)
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.seed_processes, mp_context=context) as pool:
        futures = [
            pool.submit(seed_reviewers, env, share, list(sessions), args.tasks_per_client)
            for share in shares
            if share
        ]
        rows = sorted(row for future in futures for row in future.result())
    return [token for _, token, _ in rows], [tasks for _, _, tasks in rows], sessions


class Sampler(threading.Thread):
    """The database's sessions by application_name, every SAMPLE_SECONDS, on its own session."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.peak_total = 0
        self.peak_by_name: collections.Counter[str] = collections.Counter()
        self.samples = 0

    def run(self) -> None:
        import psycopg

        info = conninfo(self.url)
        with psycopg.connect(**info, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()"
                    " AND application_name <> %s GROUP BY 1",
                    [info["dbname"], BENCH_APPLICATION],
                ).fetchall()
                self.samples += 1
                self.peak_total = max(self.peak_total, sum(n for _, n in rows))
                for name, n in rows:
                    self.peak_by_name[name or "(none)"] = max(
                        self.peak_by_name[name or "(none)"], n
                    )
                self.stop.wait(SAMPLE_SECONDS)


async def decider(
    client: Any, token: str, tasks: list[int], deadline: float, results: list, statuses: dict
) -> bool:
    """Approves its tasks until the deadline; True if it ran out of tasks before."""
    headers = {"Authorization": f"Bearer {token}"}
    pending = list(reversed(tasks))
    while pending and time.monotonic() < deadline:
        task_id = pending[-1]
        started = time.perf_counter()
        try:
            response = await client.post(
                f"/api/v1/tasks/{task_id}/decide/", json={"decision": "APPROVE"}, headers=headers
            )
        except Exception as exc:  # a refused or dropped connection is a result too
            statuses[type(exc).__name__] += 1
            results.append(time.perf_counter() - started)
            await asyncio.sleep(1)
            continue
        results.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        if response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        pending.pop()
    return not pending


async def listener(
    port: int, session: str, origin: str, received: dict, connected: list, failures: dict, stop
) -> None:
    from websockets.asyncio.client import connect

    try:
        async with connect(
            f"ws://127.0.0.1:{port}/ws/notifications/?since=0",
            additional_headers={"Cookie": f"sessionid={session}"},
            origin=origin,
            proxy=None,
            open_timeout=60,
            max_queue=None,
        ) as socket:
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(socket.recv(), 1.0)
                except TimeoutError:
                    continue
                message = json.loads(raw)
                if message["type"] == "ready":
                    if not connected[0].get(session):
                        connected[0][session] = True
                elif message["type"] == "notification":
                    received[message["notification"]["id"]] += 1
    except Exception as exc:
        failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1


def decided_and_settled(instance_ids: list[int]) -> tuple[int, int]:
    from approvals.models import WorkflowInstance

    rows = WorkflowInstance.objects.filter(pk__in=instance_ids)
    return rows.count(), rows.filter(state="done").count()


def requester_notifications(requesters: list[int]) -> list[int]:
    from approvals.models import Notification

    rows = Notification.objects.filter(recipient_id__in=requesters)
    return list(rows.values_list("pk", flat=True))


def kinds_of(ids: list[int]) -> dict[str, int]:
    from approvals.models import Notification

    return dict(
        collections.Counter(Notification.objects.filter(pk__in=ids).values_list("kind", flat=True))
    )


async def run(args: argparse.Namespace, env: dict[str, str], url: str, seeded: tuple) -> dict:
    import httpx

    tokens, tasks, sessions = seeded
    var = ROOT / "var"
    logs = [var / f"bench-load-daphne-{p}.log" for p in PORTS] + [var / "bench-load-worker.log"]
    servers = [daphne(env, port, log) for port, log in zip(PORTS, logs, strict=False)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workflow_app", "worker", "-l", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=logs[2].open("w"),
        stderr=subprocess.STDOUT,
    )
    sampler = Sampler(url)
    try:
        for port in PORTS:
            await wait_http(port)
        sampler.start()
        statuses: collections.Counter = collections.Counter()
        latencies: list[float] = []
        received: collections.Counter[int] = collections.Counter()
        connected: list[dict] = [{}]
        failures: collections.Counter[str] = collections.Counter()
        stop = asyncio.Event()
        origin = env["SITE_URL"]
        per_server = -(-args.clients // 2)
        limits = httpx.Limits(max_connections=per_server, max_keepalive_connections=per_server)
        timeout = httpx.Timeout(120.0)
        http = [
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", limits=limits, timeout=timeout)
            for p in PORTS
        ]
        listeners = [
            asyncio.create_task(
                listener(PORTS[k % 2], key, origin, received, connected, failures, stop)
            )
            for k, key in enumerate(sessions.values())
        ]
        started = time.monotonic()
        deadline = started + args.seconds
        ran_out = await asyncio.gather(
            *(
                decider(http[i % 2], tokens[i], tasks[i], deadline, latencies, statuses)
                for i in range(args.clients)
            )
        )
        elapsed = time.monotonic() - started
        for client in http:
            await client.aclose()

        # The worker finishes the notify steps of what was decided, then the pushes drain.
        from approvals.models import Decision

        decided = await asyncio.to_thread(
            lambda: list(Decision.objects.values_list("task__instance_id", flat=True))
        )
        settle_deadline = time.monotonic() + WORKER_CATCH_UP_SECONDS
        settled = 0
        while time.monotonic() < settle_deadline:
            total, settled = await asyncio.to_thread(decided_and_settled, decided)
            if settled == total:
                break
            await asyncio.sleep(1)

        def expected_ids() -> list[int]:
            return requester_notifications(list(sessions))

        # Then the pushes drain: until every notification arrived, or DRAIN_SECONDS of nothing.
        quiet_since, seen = time.monotonic(), sum(received.values())
        while time.monotonic() - quiet_since < DRAIN_SECONDS:
            ids = await asyncio.to_thread(expected_ids)
            if all(received[i] for i in ids):
                break
            await asyncio.sleep(0.5)
            if sum(received.values()) != seen:
                quiet_since, seen = time.monotonic(), sum(received.values())
        stop.set()
        await asyncio.gather(*listeners, return_exceptions=True)
        expected = await asyncio.to_thread(expected_ids)
        sampler.stop.set()
        sampler.join(5)

        lost_kinds = await asyncio.to_thread(kinds_of, [i for i in expected if not received[i]])
        return {
            "statuses": statuses,
            "latencies": latencies,
            "elapsed": elapsed,
            "connected": len(connected[0]),
            "failures": failures,
            "expected": expected,
            "lost_kinds": lost_kinds,
            "received": received,
            "decided": len(decided),
            "settled": settled,
            "sampler": sampler,
            "logs": logs,
            "ran_out": sum(ran_out),
        }
    finally:
        sampler.stop.set()
        for server in servers:
            server.terminate()
        worker.terminate()
        for process in [*servers, worker]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def errors_in(log: Path) -> int:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count("Traceback") + text.count(" ERROR ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent API clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they decide")
    parser.add_argument("--sockets", type=int, default=300, help="WebSockets opened at once")
    parser.add_argument("--pool-size", type=int, default=12, help="DATABASE_POOL_SIZE")
    parser.add_argument(
        "--pool-timeout", type=int, default=10, help="DATABASE_POOL_TIMEOUT_SECONDS"
    )
    parser.add_argument("--tasks-per-client", type=int, default=25)
    parser.add_argument("--seed-processes", type=int, default=2)
    args = parser.parse_args()
    url = database_url("bench/load.py")
    if urlsplit(url).path.strip("/") == "":
        sys.exit("name the benchmark's database in DATABASE_URL")
    env = environment(args.pool_size, args.pool_timeout)
    recreate_database(url)
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()  # this benchmark's own Redis database
    (ROOT / "var").mkdir(exist_ok=True)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env
    )
    if migrate.returncode:
        sys.exit("migrate failed")
    setup_django(env)
    from django.db import connection, connections

    t0 = time.monotonic()
    seeded = seed(env, args)
    print(
        f"seeded {args.clients} reviewers x {args.tasks_per_client} tasks, {args.sockets} "
        f"requesters in {time.monotonic() - t0:.0f}s"
    )
    connections.close_all()
    connection.close_pool()  # this process holds no connection during the run

    result = asyncio.run(run(args, env, url, seeded))
    report(args, result)


def report(args: argparse.Namespace, r: dict) -> None:
    statuses, latencies, sampler = r["statuses"], r["latencies"], r["sampler"]
    total = sum(statuses.values())
    bound = 2 * args.pool_size + WORKER_CONCURRENCY
    server_errors = sum(n for s, n in statuses.items() if not isinstance(s, int) or s >= 500)
    expected, received = r["expected"], r["received"]
    lost = sum(1 for i in expected if received[i] == 0)
    duplicated = sum(n - 1 for n in received.values() if n > 1)
    print(
        f"API: {args.clients} clients, {r['elapsed']:.1f}s: {total} responses, "
        f"{total / r['elapsed']:.1f} requests/s"
    )
    print(
        f"latency ms: p50 {percentile(latencies, 50):.0f}  p95 {percentile(latencies, 95):.0f}  "
        f"p99 {percentile(latencies, 99):.0f}  max {max(latencies, default=0) * 1000:.0f}"
    )
    print("status counts: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str)))
    by_name = ", ".join(f"{name} {n}" for name, n in sorted(sampler.peak_by_name.items()))
    print(
        f"peak PostgreSQL connections: {sampler.peak_total} (bound {bound} = 2 x "
        f"{args.pool_size} + {WORKER_CONCURRENCY} x 1; peaks by process: {by_name}; "
        f"{sampler.samples} samples)"
    )
    if r["ran_out"]:
        print(f"{r['ran_out']} clients ran out of tasks before the end (--tasks-per-client)")
    print(
        f"WebSockets: {r['connected']}/{args.sockets} connected"
        + (f"; failures: {dict(r['failures'])}" if r["failures"] else "")
    )
    print(
        f"decisions: {r['decided']}, steps finished by the worker: {r['settled']}; "
        f"notifications: {len(expected)} expected, {len(expected) - lost} received, "
        f"lost {lost}, duplicated {duplicated}"
        + (f" (lost by kind: {r['lost_kinds']})" if lost else "")
    )
    print("errors in logs: " + ", ".join(f"{log.name} {errors_in(log)}" for log in r["logs"]))
    checks = {
        "0 responses 5xx": server_errors == 0,
        "connections within the bound": sampler.peak_total <= bound,
        f"{args.sockets}/{args.sockets} sockets connected": r["connected"] == args.sockets,
        "0 notifications lost": lost == 0,
    }
    for name, ok in checks.items():
        print(f"{name}: {'PASS' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
