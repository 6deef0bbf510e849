"""Commit → browser latency of notifications in production mode.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench \
    REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/push_latency.py [--clients 500] [--rate 20] [--seconds 30]

PostgreSQL, channels-redis and two Daphne processes, as deployed. The database is migrated and
seeded with one requester per client and a published one-step review flow; each requester has
requests waiting for a manager. `--clients` WebSocket clients (signed-in requesters, real
session cookies, half on each Daphne) connect to /ws/notifications/. A separate process then
approves one request every 1/rate seconds, round-robin over the requesters; each approval
commits the decision, the completion and the requester's notification in one transaction, and
the script records the commit time (an on_commit callback registered before the notification
subscriber's). Clients record when the notification for their request arrives. Printed: p50,
p95 and max from commit to receipt, and messages lost (decisions whose notification never
arrived, after a 5 s drain). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLOW_KEY = "bench-push"
FLOW = {
    "id": FLOW_KEY,
    "title": "Bench push",
    "initial": "review",
    "states": {
        "review": {"meta": {"task": {"roles": ["manager"]}}, "on": {"APPROVE": "approved"}},
        "approved": {"type": "final"},
    },
}
TARGET_P95_MS = 250.0
DRAIN_SECONDS = 5.0
SECRET = "push-latency-bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def environment() -> dict[str, str]:
    database, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if urlsplit(database).scheme not in {"postgres", "postgresql"} or not redis:
        sys.exit(
            "bench/push_latency.py runs in production mode: set DATABASE_URL (PostgreSQL) "
            "and REDIS_URL"
        )
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="workflow_app.settings",
        DEBUG="false",
        SECRET_KEY=SECRET,
        AUDIT_CHAIN_KEY=SECRET,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Both servers stand for one site behind one address: the origin every page has.
        SITE_URL="http://127.0.0.1:8931",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def seed(clients: int, per_client: int) -> tuple[list[str], list[list[int]], int]:
    """Requesters with sessions and waiting requests; the reviewer's id."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    from accounts.models import User
    from approvals.models import DefinitionStatus, WorkflowDefinition
    from approvals.services.definitions import definition_import
    from approvals.services.instances import instance_start

    manager, _ = Group.objects.get_or_create(name="manager")
    reviewer, _ = User.objects.get_or_create(username="bench-reviewer")
    reviewer.groups.add(manager)
    if not WorkflowDefinition.objects.filter(
        key=FLOW_KEY, status=DefinitionStatus.PUBLISHED
    ).exists():
        definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    sessions: list[str] = []
    waiting: list[list[int]] = []
    for i in range(clients):
        user, _ = User.objects.get_or_create(
            username=f"bench-req-{i}", defaults={"email": f"req{i}@bench.example"}
        )
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append(store.session_key)
        waiting.append(
            [
                instance_start(
                    definition_key=FLOW_KEY,
                    context={},
                    actor=user,
                    now=timezone.now(),
                    title=f"bench {i}.{k}",
                ).pk
                for k in range(per_client)
            ]
        )
    return sessions, waiting, reviewer.pk


def decide(env: dict[str, str], order: list[int], reviewer_id: int, rate: float, out) -> None:
    """In its own process: approve the requests in `order` at a steady rate."""
    setup_django(env)
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from approvals.models import Task
    from approvals.services.task_work import task_decide

    reviewer = User.objects.get(pk=reviewer_id)
    tasks = dict(
        Task.objects.filter(instance_id__in=order, status="open").values_list("instance_id", "pk")
    )
    committed: dict[int, float] = {}
    start = time.monotonic()
    for n, instance_id in enumerate(order):
        wait = start + n / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        with transaction.atomic():
            # Registered first, so it runs first at commit: before the push is sent.
            transaction.on_commit(lambda i=instance_id: committed.__setitem__(i, time.time()))
            task_decide(
                task_id=tasks[instance_id], event="APPROVE", actor=reviewer, now=timezone.now()
            )
    out.put((committed, time.monotonic() - start))


def daphne(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--websocket_connect_timeout",  # as launch.py runs it
            "30",
            "workflow_app.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


async def wait_http(port: int) -> None:
    import urllib.request

    for _ in range(300):
        try:
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{port}/healthz", timeout=2
            )
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit(f"daphne on {port} did not start")


async def client(port: int, session: str, received: dict, ready: asyncio.Event, stop) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{port}/ws/notifications/",
        additional_headers={"Cookie": f"sessionid={session}"},
        origin=os.environ["SITE_URL"],
        proxy=None,
        open_timeout=60,
        max_queue=None,
    ) as socket:
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "ready":
                ready.set()
            elif message["type"] == "notification":
                at = time.time()
                note = message["notification"]
                received.setdefault(note["instance"], []).append(at)
            if stop.is_set():
                break


async def run(args: argparse.Namespace, env: dict[str, str], sessions, order, reviewer_id):
    ports = [8931, 8932]
    logs = [ROOT / "var" / f"bench-daphne-{p}.log" for p in ports]
    servers = [daphne(env, p, log) for p, log in zip(ports, logs, strict=True)]
    received: dict[int, list[float]] = {}
    stop = asyncio.Event()
    try:
        for port in ports:
            await wait_http(port)
        readies = [asyncio.Event() for _ in sessions]
        tasks = []
        for i, session in enumerate(sessions):
            tasks.append(
                asyncio.create_task(client(ports[i % 2], session, received, readies[i], stop))
            )
            if i % 50 == 49:
                await asyncio.gather(*(r.wait() for r in readies[: i + 1]))
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        connected = sum(r.is_set() for r in readies)
        print(f"connected clients: {connected} (on 2 Daphne processes)")

        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        decider = context.Process(target=decide, args=(env, order, reviewer_id, args.rate, out))
        decider.start()
        committed, elapsed = await asyncio.to_thread(out.get)
        decider.join()
        await asyncio.sleep(DRAIN_SECONDS)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=20)
    return connected, committed, elapsed, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="decisions per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    env = environment()
    (ROOT / "var").mkdir(exist_ok=True)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env
    )
    if migrate.returncode:
        sys.exit("migrate failed")
    setup_django(env)
    decisions = int(args.rate * args.seconds)
    per_client = -(-decisions // args.clients)
    t0 = time.monotonic()
    sessions, waiting, reviewer_id = seed(args.clients, per_client)
    order = [waiting[i % args.clients][i // args.clients] for i in range(decisions)]
    print(f"seeded {args.clients} requesters, {decisions} requests in {time.monotonic() - t0:.0f}s")
    from django.db import connections

    connections.close_all()
    _, committed, elapsed, received = asyncio.run(run(args, env, sessions, order, reviewer_id))
    latencies = sorted((received[i][0] - at) * 1000 for i, at in committed.items() if i in received)
    lost = sum(1 for i in committed if i not in received)
    duplicates = sum(len(v) - 1 for v in received.values())
    print(f"decisions: {len(committed)} in {elapsed:.1f}s ({len(committed) / elapsed:.1f}/s)")
    if latencies:
        p50 = statistics.median(latencies)
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(f"commit → receipt ms: p50 {p50:.1f}  p95 {p95:.1f}  max {latencies[-1]:.1f}")
        print(f"p95 < {TARGET_P95_MS:.0f} ms: {'PASS' if p95 < TARGET_P95_MS else 'MISS'}")
    print(f"messages lost: {lost}  duplicates: {duplicates}")


if __name__ == "__main__":
    main()
