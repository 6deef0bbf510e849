"""Migrating running requests to a new version on PostgreSQL, while the web app serves inboxes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_migrate \
    REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/migrate.py [--requests 100000] [--port 8951] [--keep-db]

The database (a name with `bench` in it) is dropped and recreated, migrated, then filled with
plain SQL: `--requests` active requests of version 1 of a one-step workflow, each with its open
task in the step `review` (a role's queue, a fifth of them claimed by the reviewer, due dates
spread over two weeks). Version 2 renames the step `manager_review` and adds a director step,
so every request moves (`--map review=manager_review`) and every task is kept and updated.

A Daphne server (production mode, DEBUG off) is started on `--port`, and a reviewer holding the
role, signed in, asks for `GET /inbox/?tab=queue` one request after another: first for
`--idle-seconds` with nothing else running, then during the whole migration, which runs in this
process as `manage.py migrate_instances` runs it (`migration_run`: each request in its own
locked transaction, audited). Printed: requests migrated, seconds, requests/s; p50/p95/max of
the inbox before and during the migration, with how many answers were not 200; and a check of
a sample of the migrated requests' audit chains. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, recreate_database  # noqa: E402

SECRET = "migrate-bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
KEY = "bench-migrate"
ROLE = "bench-migrate-manager"
REVIEWER = "bench-migrate-reviewer"
CHAIN_SAMPLE = 1000


def flow(version: int) -> dict[str, Any]:
    step = "review" if version == 1 else "manager_review"
    states: dict[str, Any] = {
        step: {
            "meta": {"task": {"roles": [ROLE], "sla": "P5D"}, "label": "Manager review"},
            "on": {"APPROVE": "approved" if version == 1 else "director", "REJECT": "rejected"},
        },
        "approved": {"type": "final"},
        "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
    }
    if version == 2:
        states["director"] = {
            "meta": {"task": {"roles": [ROLE]}, "label": "Director approval"},
            "on": {"APPROVE": "approved", "REJECT": "rejected"},
        }
    return {
        "id": KEY,
        "title": f"Bench migrate v{version}",
        "initial": step,
        "form": {"type": "object", "properties": {"amount": {"type": "number"}}},
        "states": states,
    }


def environment(port: int) -> dict[str, str]:
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/migrate.py runs in production mode: set REDIS_URL too")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="workflow_app.settings",
        DEBUG="false",
        SECRET_KEY=SECRET,
        AUDIT_CHAIN_KEY=SECRET,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        CELERY_QUEUE="bench-migrate",
    )
    return env


SEED = [
    """
    INSERT INTO approvals_workflowinstance
        (definition_id, requester_id, title, business_key, workflow_key, context, state,
         status, version, audit_seq, audit_head, created_at, updated_at, parent_state)
    SELECT %(definition)s, %(requester)s, 'Bench request ' || n, '', %(key)s,
           jsonb_build_object('amount', n %% 20000), 'review', 'active', 1, 0, '',
           now() - interval '3 days', now() - interval '3 days', ''
    FROM generate_series(1, %(count)s) n
    """,
    """
    INSERT INTO approvals_task
        (instance_id, definition_id, search_text, state, visit, label, assigned_as, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         escalation_level, created_at, claimed_at, due_at, sla_started_at)
    SELECT i.id, i.definition_id, lower(i.title || E'\n\nManager review'), 'review', 1,
           'Manager review', '',
           CASE WHEN i.id %% 5 = 0 THEN 'claimed' ELSE 'open' END, false, true, 'any',
           'decision', 0, CASE WHEN i.id %% 5 = 0 THEN %(reviewer)s END, 0, i.created_at,
           CASE WHEN i.id %% 5 = 0 THEN i.created_at END,
           now() - interval '7 days' + (i.id %% 14) * interval '1 day', i.created_at
    FROM approvals_workflowinstance i WHERE i.definition_id = %(definition)s
    """,
    """
    INSERT INTO approvals_task_candidate_groups (task_id, group_id)
    SELECT t.id, %(role)s FROM approvals_task t WHERE t.definition_id = %(definition)s
    """,
]


def seed(count: int) -> tuple[Any, str]:
    """The two versions, `count` requests on the first; the reviewer's session key."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    role = Group.objects.create(name=ROLE)
    reviewer = User.objects.create(username=REVIEWER, first_name="Bench", last_name="Reviewer")
    reviewer.groups.add(role)
    requester = User.objects.create(username="bench-migrate-requester")
    v1 = definition_import(config=flow(1), actor=None, publish=True, now=timezone.now())
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        for statement in SEED:
            cur.execute(
                statement,
                {
                    "definition": v1.pk,
                    "requester": requester.pk,
                    "reviewer": reviewer.pk,
                    "role": role.pk,
                    "key": KEY,
                    "count": count,
                },
            )
        cur.execute("ANALYZE")
    print(f"seeded {count:,} active requests of v1 in {time.perf_counter() - started:.1f} s")
    definition_import(config=flow(2), actor=None, publish=True, now=timezone.now())
    store = SessionStore()
    store[SESSION_KEY] = str(reviewer.pk)
    store[BACKEND_SESSION_KEY] = "accounts.backends.LocalPasswordBackend"
    store[HASH_SESSION_KEY] = reviewer.get_session_auth_hash()
    store.create()
    return v1, store.session_key


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    log = ROOT / "var" / "bench-migrate-daphne.log"
    log.parent.mkdir(exist_ok=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "workflow_app.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit(f"daphne on {port} did not start (see {log})")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (to the sign-in page) is an answer to count, not one to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class InboxSampler(threading.Thread):
    """GET the reviewer's queue, one request after another, until stopped."""

    def __init__(self, port: int, session: str) -> None:
        super().__init__(daemon=True)
        self.request = urllib.request.Request(
            f"http://127.0.0.1:{port}/inbox/?tab=queue",
            headers={"Cookie": f"sessionid={session}"},
        )
        self.samples: list[tuple[float, int]] = []
        self.opener = urllib.request.build_opener(_NoRedirect)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            started = time.perf_counter()
            try:
                with self.opener.open(self.request, timeout=30) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            self.samples.append((time.perf_counter() - started, status))

    def take(self) -> list[tuple[float, int]]:
        taken, self.samples = self.samples, []
        return taken


def report(name: str, samples: list[tuple[float, int]]) -> None:
    times = sorted(t * 1000 for t, _ in samples)
    bad = sum(1 for _, status in samples if status != 200)
    if len(times) < 2:
        print(f"inbox {name}: {len(times)} answer(s), too few to tell")
        return
    p95 = statistics.quantiles(times, n=20)[-1]
    print(
        f"inbox {name}: {len(times)} answers, p50 {statistics.median(times):.0f} ms, "
        f"p95 {p95:.0f} ms, max {times[-1]:.0f} ms, not 200: {bad}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=8951)
    parser.add_argument("--idle-seconds", type=float, default=15.0)
    args = parser.parse_args()

    url = database_url("bench/migrate.py")
    recreate_database(url)
    env = environment(args.port)
    # The server's settings here too: the reviewer's session must be valid there.
    os.environ.update(env)
    import django

    django.setup()
    import redis
    from django.utils import timezone

    from approvals.models import WorkflowInstance
    from approvals.services.audit import verify_instances
    from approvals.services.migration import migration_prepare, migration_run

    v1, session = seed(args.requests)
    server = start_server(env, args.port)
    sampler = InboxSampler(args.port, session)
    try:
        sampler.start()
        time.sleep(args.idle_seconds)
        idle = sampler.take()
        migration = migration_prepare(
            key=KEY, from_version=1, to_version=2, mapping={"review": "manager_review"}
        )
        started = time.perf_counter()
        result = migration_run(migration, actor=None, now=timezone.now())
        seconds = time.perf_counter() - started
        during = sampler.take()
    finally:
        sampler.stopped.set()
        sampler.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # the unconsumed queue

    migrated = len(result.migrated)
    print(
        f"migrated {migrated:,} requests (refused {len(result.refused)}) in {seconds:.1f} s: "
        f"{migrated / seconds:.0f} requests/s"
    )
    report("before the migration", idle)
    report("during the migration", during)
    left = WorkflowInstance.objects.filter(definition=v1, status="active").count()
    sample = list(
        WorkflowInstance.objects.order_by("?").values_list("pk", flat=True)[:CHAIN_SAMPLE]
    )
    broken = list(verify_instances(sample))
    print(
        f"still on v1: {left}; audit chains of {len(sample)} sampled requests broken: {len(broken)}"
    )


if __name__ == "__main__":
    main()
