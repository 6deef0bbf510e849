"""One decision that notifies a role of 2,000 members by e-mail, to a local SMTP sink.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_fanout \
        .venv/bin/python bench/notify_fanout.py [--members 20 2000] [--workers 2]

A two-step flow is published: a manager approves, then the task goes to a role of N members
(`--members`, each size in turn, on a database dropped and created afresh first: a name with
"bench" in it). The manager's `task_decide` is the decision measured; it writes, in its
transaction, the role's task, N notifications and N e-mail rows. Printed for each N:

- the decision's own transaction: the time inside `transaction.atomic()` (everything the
  service writes, the subscribers' rows included) and the commit with what runs after it
  (handing the e-mail batches to the broker, the live push), median of `--repeat` decisions;
- delivery: the e-mail rows sent as the worker does (`email_messages_send`, batches of 50 over
  one SMTP connection each) by `--workers` threads, each with its own database connection, to
  an SMTP sink (aiosmtpd's `Sink` handler in a separate process, which accepts and drops);
  the time from the commit until the last message was accepted, and messages/s;
- memory: the peak of Python allocations (tracemalloc) during one more decision (traced
  apart: tracemalloc slows what it traces), the growth of the process's peak RSS while
  sending, and that peak.

Delivery sends the e-mails of the last two decisions (2N + 2 messages).

Nothing is asserted; the transaction should grow with N by the rows it writes only.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, recreate_database, setup_django  # noqa: E402

FLOW = {
    "id": "fanout",
    "title": "Fan-out",
    "initial": "manager",
    "form": {"type": "object", "properties": {"title": {"type": "string"}}},
    "states": {
        "manager": {
            "meta": {"label": "Manager approval", "task": {"roles": ["bench-manager"]}},
            "on": {"APPROVE": "team"},
        },
        "team": {
            "meta": {"label": "Team sign-off", "task": {"roles": ["bench-team"], "sla": "P2D"}},
            "on": {"APPROVE": "done"},
        },
        "done": {"type": "final"},
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sink(port: int) -> subprocess.Popen:
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.kill()
    sys.exit("the SMTP sink did not start")


def prepare(members: int) -> tuple[object, object]:
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    manager_role, _ = Group.objects.get_or_create(name="bench-manager")
    team, _ = Group.objects.get_or_create(name="bench-team")
    manager = User.objects.create(username="boss", email="boss@example.com")
    manager.groups.add(manager_role)
    requester = User.objects.create(username="asker", email="asker@example.com")
    people = User.objects.bulk_create(
        User(username=f"member{i}", email=f"member{i}@example.com") for i in range(members)
    )
    team.user_set.add(*people)
    definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    return manager, requester


def one_decision(
    manager: object, requester: object, n: int, *, traced: bool = False
) -> tuple[float, float, int, list]:
    """(seconds inside the transaction, seconds of commit and after-commit, peak bytes
    allocated when `traced` (tracemalloc slows the run: timings come from untraced runs),
    e-mail ids)."""
    from django.db import transaction
    from django.utils import timezone

    from approvals.integrations.email.models import OutgoingEmail
    from approvals.services.instances import instance_start
    from approvals.services.task_work import task_decide

    instance = instance_start(
        definition_key="fanout",
        context={"title": f"Request {n}"},
        actor=requester,
        now=timezone.now(),
    )
    task = instance.tasks.get()
    before = set(OutgoingEmail.objects.values_list("pk", flat=True))
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    with transaction.atomic():
        task_decide(task_id=task.pk, event="APPROVE", actor=manager, now=timezone.now())
        inside = time.perf_counter()
    done = time.perf_counter()
    peak = 0
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    ids = sorted(set(OutgoingEmail.objects.values_list("pk", flat=True)) - before)
    return inside - started, done - inside, peak, ids


def deliver(ids: list[int], workers: int) -> tuple[float, int, float]:
    """(seconds until the last message was accepted, messages sent, growth of the process's
    peak RSS in MB while sending)."""
    from django.db import connection
    from django.utils import timezone

    from approvals.integrations.email.models import OutgoingEmail
    from approvals.integrations.email.services import email_messages_send
    from approvals.integrations.email.subscriber import BATCH

    batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                with lock:
                    if not batches:
                        return
                    batch = batches.pop()
                email_messages_send(ids=batch, now=timezone.now())
        finally:
            connection.close()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    sent = OutgoingEmail.objects.filter(pk__in=ids, status="sent").count()
    return elapsed, sent, growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[20, 2000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = database_url("notify_fanout.py")
    port = free_port()
    os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{port}?tls=false"
    os.environ["SITE_URL"] = "https://signoff.example.com"
    # The e-mail batches handed to the broker after commit land in a folder nobody reads.
    os.environ.pop("REDIS_URL", None)
    # No pool: the database is dropped between sizes, with no connection left open to it.
    os.environ["DATABASE_POOL_SIZE"] = "0"
    os.environ["SIGNOFF_VAR_DIR"] = tempfile.mkdtemp(prefix="signoff-fanout-")
    sink = start_sink(port)
    try:
        rows = []
        recreate_database(url)
        setup_django()
        from django.db import connections

        for members in args.members:
            for conn in connections.all():
                conn.close()
            recreate_database(url)
            manager, requester = prepare(members)
            inside, after, last_ids = [], [], []
            for n in range(args.repeat):
                in_tx, post, _, ids = one_decision(manager, requester, n)
                inside.append(in_tx)
                after.append(post)
                last_ids = ids
            *_, peak, traced_ids = one_decision(manager, requester, args.repeat, traced=True)
            peaks = [peak]
            elapsed, sent, deliver_peak = deliver(last_ids + traced_ids, args.workers)
            rows.append(
                (
                    members,
                    sent,
                    statistics.median(inside) * 1000,
                    statistics.median(after) * 1000,
                    max(peaks) / 1e6,
                    elapsed,
                    sent / elapsed if elapsed else 0.0,
                    deliver_peak / 1e6,
                )
            )
            print(
                f"{members} members: decision {rows[-1][2]:.1f} ms in the transaction + "
                f"{rows[-1][3]:.1f} ms commit/after; {sent} e-mails accepted in "
                f"{elapsed:.2f} s ({rows[-1][6]:.0f}/s)",
                flush=True,
            )
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(
        "| members | e-mails sent | decision: in transaction (ms) | commit + after commit (ms) "
        "| decision peak alloc (MB) | until last accepted (s) | messages/s "
        "| RSS growth sending (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r[0]:,} | {r[1]:,} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.2f} "
            f"| {r[6]:.0f} | {r[7]:.1f} |"
        )
    print(f"\npeak RSS of this process: {rss:.0f} MB; {args.workers} sending threads")


if __name__ == "__main__":
    main()
