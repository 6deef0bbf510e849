"""Long-poll waiters while asks are decided, in production mode.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_asks \
    REDIS_URL=redis://127.0.0.1:6379/14 \
        .venv/bin/python bench/asks.py [--waiters 500] [--rate 50]

PostgreSQL, channels-redis, one Daphne. The database is migrated and seeded with a program's
account allowed to ask finance, a finance reviewer and `--waiters` asks (review-action, made
through the asks service). One client per ask then long-polls
`GET /api/v1/instances/{id}/wait/?timeout=60` with the program's token, all at once, on raw
sockets. A separate process decides the asks at `--rate` a second (APPROVE_WITH_CHANGES with an
edited amount) and records each commit's time (an on_commit callback registered before the
push's). Printed: p50/p95/max from decision commit to the waiter's answer, errors (an answer
that is not 200 done with the edited arguments, or none), the Daphne process's memory (RSS)
and its open PostgreSQL connections before the waiters, while they wait, and while the asks are
decided. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import conninfo, database_url, ensure_database  # noqa: E402
from bench.push_latency import daphne, environment, setup_django, wait_http  # noqa: E402

PORT = 8937
TARGET_P95_MS = 250.0


def seed(waiters: int) -> tuple[str, list[tuple[int, int]], int]:
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts.models import User
    from approvals.models import AskPermission
    from approvals.services.api_tokens import token_create
    from approvals.services.asks import ask_create

    finance, _ = Group.objects.get_or_create(name="finance")
    fred, _ = User.objects.get_or_create(username="bench-fred")
    fred.groups.add(finance)
    bot, _ = User.objects.get_or_create(username="bench-bot")
    AskPermission.objects.get_or_create(role=finance)[0].users.add(bot)
    token, plaintext = token_create(
        user=bot, name=f"bench-{time.time_ns()}", actor=bot, now=timezone.now()
    )
    asks = []
    for n in range(waiters):
        instance = ask_create(
            token=token,
            workflow="review-action",
            title=f"bench ask {n}",
            action={"name": "send_refund", "arguments": {"order": str(n), "amount": 100}},
            context="Bench.",
            roles=["finance"],
            expires_in="PT4H",
            now=timezone.now(),
        )
        asks.append((instance.pk, instance.tasks.get().pk))
    return plaintext, asks, fred.pk


def decide(
    env: dict[str, str], asks: list[tuple[int, int]], fred_id: int, rate: float, out
) -> None:
    setup_django(env)
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from approvals.services.task_work import task_decide

    fred = User.objects.get(pk=fred_id)
    committed: dict[int, float] = {}
    start = time.monotonic()
    for n, (instance_id, task_id) in enumerate(asks):
        pause = start + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        with transaction.atomic():
            transaction.on_commit(lambda i=instance_id: committed.__setitem__(i, time.time()))
            task_decide(
                task_id=task_id,
                event="APPROVE_WITH_CHANGES",
                data={"arguments": {"order": str(n), "amount": 50}},
                actor=fred,
                now=timezone.now(),
            )
    out.put((committed, time.monotonic() - start))


async def waiter(instance_id: int, token: str, answers: dict, connected: list) -> None:
    """One program waiting, as approvals/client.py does: long-polls again after done: false."""
    request = (
        f"GET /api/v1/instances/{instance_id}/wait/?timeout=60 HTTP/1.0\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ).encode()
    first = True
    try:
        while True:
            reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            writer.write(request)
            await writer.drain()
            if first:
                connected.append(instance_id)
                first = False
            raw = await reader.read()
            received = time.time()
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            data = json.loads(body) if status == 200 else body
            if status != 200 or data["done"]:
                answers[instance_id] = (received, status, data)
                return
    except Exception as exc:  # a bench counts failures, it does not stop at them
        answers[instance_id] = (time.time(), 0, repr(exc))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def web_connections(url: str) -> int:
    import psycopg

    info = conninfo(url)
    with psycopg.connect(**conninfo(url, "postgres"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND application_name = 'signoff web'",
            [info["dbname"]],
        ).fetchone()
    return int(row[0])


async def run(
    args: argparse.Namespace, env: dict[str, str], url: str, seeded: tuple
) -> dict[str, Any]:
    token, asks, fred_id = seeded
    log = Path(args.log)
    server = daphne({**env, "SITE_URL": f"http://127.0.0.1:{PORT}"}, PORT, log)
    try:
        await wait_http(PORT)
        samples: dict[str, list[tuple[int, int]]] = {"idle": [], "waiting": [], "deciding": []}
        samples["idle"].append((rss_kb(server.pid), web_connections(url)))
        answers: dict[int, tuple] = {}
        connected: list[int] = []
        tasks = [asyncio.create_task(waiter(i, token, answers, connected)) for i, _ in asks]
        while len(connected) < len(asks) and len(answers) < len(asks):
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # every waiter has been read and sits in its wait
        for _ in range(4):
            samples["waiting"].append((rss_kb(server.pid), web_connections(url)))
            await asyncio.sleep(0.5)
        # Spawned, not forked: a forked child would share this process's database connections.
        spawn = multiprocessing.get_context("spawn")
        out = spawn.Queue()
        decider = spawn.Process(target=decide, args=(env, asks, fred_id, args.rate, out))
        decider.start()
        while decider.is_alive() and len(answers) < len(asks):
            samples["deciding"].append((rss_kb(server.pid), web_connections(url)))
            await asyncio.sleep(0.5)
        committed, elapsed = await asyncio.to_thread(out.get)
        decider.join()
        await asyncio.wait(tasks, timeout=30)
    finally:
        server.terminate()
        server.wait(20)
    latencies, errors, example = [], 0, None
    for n, (instance_id, _) in enumerate(asks):
        answer = answers.get(instance_id)
        ok = (
            answer is not None
            and answer[1] == 200
            and answer[2]["done"]
            and answer[2]["decision"]["arguments"] == {"order": str(n), "amount": 50}
        )
        if not ok or instance_id not in committed:
            errors += 1
            example = example or (instance_id in committed, answer)
            continue
        latencies.append((answer[0] - committed[instance_id]) * 1000)
    return {
        "latencies": latencies,
        "errors": errors,
        "example": example,
        "samples": samples,
        "elapsed": elapsed,
    }


def percentile(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--log", default="/tmp/bench-asks-daphne.log")
    args = parser.parse_args()
    url = database_url("bench/asks.py")
    ensure_database(url)
    env = environment()
    env.update(API_READ_RATE="1000000/minute", API_WRITE_RATE="1000000/minute")
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    if migrated.returncode:
        sys.exit(migrated.stderr.decode())
    setup_django(env)
    r = asyncio.run(run(args, env, url, seed(args.waiters)))
    lat = r["latencies"]
    print(f"waiters {args.waiters}, decisions at {args.rate}/s over {r['elapsed']:.1f} s")
    if lat:
        print(
            f"commit -> waiter answered: p50 {statistics.median(lat):.0f} ms, "
            f"p95 {percentile(lat, 95):.0f} ms, max {max(lat):.0f} ms "
            f"(target p95 < {TARGET_P95_MS:.0f} ms)"
        )
    print(f"errors: {r['errors']}" + (f" (first: {r['example']})" if r["example"] else ""))
    for phase, rows in r["samples"].items():
        if rows:
            rss = max(x for x, _ in rows) / 1024
            conns = sorted({c for _, c in rows})
            print(f"{phase:9} daphne RSS max {rss:.0f} MiB, web DB connections {conns}")


if __name__ == "__main__":
    main()
