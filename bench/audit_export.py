"""The signed audit export and its offline verifier at scale: time, bundle size and peak memory
of each, at two sizes or more, to show that memory stays flat in the number of requests.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_audit \\
        .venv/bin/python bench/audit_export.py [--requests 100000] [--requests 200000]

The database is dropped and recreated (its name must contain "bench"), migrated, and filled with
psycopg's COPY: one published workflow, 20 users, and requests of 10 audit events each
(started, task opened, claimed, a comment, a document version, unclaimed, claimed, decided with
a comment, the transition, completed), each event hashed and MACed exactly as the services do
(approvals/audit_chain.py, approvals/services/audit.py), so that the chains verify. Default:
100,000 requests, 1,000,000 events; give `--requests` once per size (smallest first: the
database grows to each in turn).

At each size: `manage.py export_audit --out FILE` and `python -m approvals.verify_bundle FILE`
each run as a process of their own, timed, with their peak RSS from the kernel (VmHWM:
everything the process held at its peak, the interpreter and, for the export, Django included).
Printed: requests, events, seconds, MB of the bundle and peak MB of each. Nothing is asserted.

`--retention`: then, at the largest size, the workflow is published again with `retention: P1D`
and `manage.py apply_retention` runs as a process of its own: every request archived into
bundles of RETENTION_BATCH requests (kept in the storage, `var/media/retention/` by default)
and deleted, leaving its tombstone. Printed: seconds, requests deleted per second, peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, recreate_database, setup_django  # noqa: E402

EVENTS_PER_REQUEST = 10
BATCH = 5_000
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

FLOW = {
    "id": "bench-audit",
    "title": "Bench audit",
    "initial": "review",
    "form": {"type": "object", "properties": {"title": {"type": "string"}}},
    "states": {
        "review": {
            "meta": {"task": {"roles": ["bench-manager"]}},
            "on": {"APPROVE": "approved", "REJECT": "rejected"},
        },
        "approved": {"type": "final"},
        "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
    },
}


def prepare() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone

    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    Group.objects.get_or_create(name="bench-manager")
    definition = definition_import(config=FLOW, actor=None, publish=True, now=timezone.now())
    User = get_user_model()
    users = [User.objects.get_or_create(username=f"bench{n:02d}")[0].pk for n in range(20)]
    return {"definition": definition.pk, "users": users}


def _events(pk: int, requester: tuple[int, str], reviewer: tuple[int, str], at: datetime):
    """The ten events of one request, as (seq, at, actor, name, event, from, to, data)."""
    sha = f"{pk:064x}"
    step = timedelta(minutes=7)
    plan = [
        (requester, "instance.started", "", "review", {"context": {"title": f"Request {pk}"}}),
        (None, "task.opened", "", "review", {"roles": ["bench-manager"]}),
        (reviewer, "task.claimed", "", "review", {}),
        (reviewer, "comment.added", "", "review", {"comment": 1, "mentions": []}),
        (
            reviewer,
            "artifact.version_added",
            "",
            "review",
            {"name": "quote", "version": 1, "sha256": sha, "size": 1024},
        ),
        (reviewer, "task.unclaimed", "", "review", {}),
        (reviewer, "task.claimed", "", "review", {}),
        (
            reviewer,
            "task.decided",
            "",
            "review",
            {"decision": "APPROVE", "comment": f"Fine for request {pk}, within budget"},
        ),
        (reviewer, "transition", "review", "approved", {"event": "APPROVE"}),
        (None, "instance.completed", "", "approved", {"outcome": "completed"}),
    ]
    for seq, (actor, event, source, target, data) in enumerate(plan, start=1):
        yield seq, at + step * seq, actor, event, source, target, data


def seed(world: dict[str, Any], first: int, last: int) -> float:
    """Requests `first`..`last` (ids), their events chained, hashed and keyed."""
    import json

    from django.conf import settings
    from django.db import connection, transaction

    from approvals import audit_chain
    from approvals.services.audit import audit_key_id, event_mac

    key = settings.AUDIT_CHAIN_KEY
    key_id = audit_key_id(key)
    users = world["users"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        for low in range(first, last + 1, BATCH):
            high = min(low + BATCH - 1, last)
            instances = []
            # One transaction a batch: the events' foreign key to their request is checked at
            # its commit (Django's constraints are deferred), after both COPYs.
            with transaction.atomic():
                with (
                    raw.cursor() as cur,
                    cur.copy(
                        "COPY approvals_auditevent (instance_id, seq, at, actor_id, "
                        "actor_name, channel, event, from_state, to_state, task_id, data, "
                        "prev_hash, hash, mac, mac_key_id) FROM STDIN"
                    ) as copy,
                ):
                    for pk in range(low, high + 1):
                        requester = (users[pk % len(users)], f"bench{pk % len(users):02d}")
                        reviewer = (
                            users[(pk + 1) % len(users)],
                            f"bench{(pk + 1) % len(users):02d}",
                        )
                        created = START + timedelta(minutes=pk)
                        prev = ""
                        for seq, at, actor, event, source, target, data in _events(
                            pk, requester, reviewer, created
                        ):
                            body = audit_chain.event_body(
                                instance=pk,
                                seq=seq,
                                at=at,
                                actor=actor[0] if actor else None,
                                actor_name=actor[1] if actor else "",
                                channel="web" if actor else "system",
                                event=event,
                                from_state=source,
                                to_state=target,
                                task=None,
                                data=data,
                                prev=prev,
                            )
                            digest = audit_chain.body_hash(body)
                            copy.write_row(
                                (
                                    pk,
                                    seq,
                                    at,
                                    body["actor"],
                                    body["actor_name"],
                                    body["channel"],
                                    event,
                                    source,
                                    target,
                                    None,
                                    json.dumps(data),
                                    prev,
                                    digest,
                                    event_mac(key, digest),
                                    key_id,
                                )
                            )
                            prev = digest
                        instances.append((pk, requester[0], created, prev))
                with (
                    raw.cursor() as cur,
                    cur.copy(
                        "COPY approvals_workflowinstance (id, definition_id, requester_id, title, "
                        "business_key, workflow_key, context, state, status, version, audit_seq, "
                        "audit_head, created_at, updated_at, completed_at, parent_state) FROM STDIN"
                    ) as copy,
                ):
                    for pk, requester_id, created, head in instances:
                        ended = created + timedelta(minutes=7 * EVENTS_PER_REQUEST)
                        copy.write_row(
                            (
                                pk,
                                world["definition"],
                                requester_id,
                                f"Request {pk}",
                                "",
                                FLOW["id"],
                                json.dumps({"title": f"Request {pk}"}),
                                "approved",
                                "completed",
                                EVENTS_PER_REQUEST,
                                EVENTS_PER_REQUEST,
                                head,
                                created,
                                ended,
                                ended,
                                "",
                            )
                        )
            print(f"  seeded {high:,} requests", flush=True)
        for table in ("approvals_workflowinstance", "approvals_auditevent"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            cursor.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


# Runs a script or module, then writes the process's peak RSS (the kernel's high-water mark of
# its own address space, VmHWM) to PEAK_FILE. Not ru_maxrss of the child: that counts the copy
# of this (large) parent the child was before exec.
PEAK = """
import os, runpy, sys
target, sys.argv = sys.argv[1], sys.argv[1:]
try:
    if target.endswith(".py"):
        sys.path.insert(0, os.path.dirname(os.path.abspath(target)))
        runpy.run_path(target, run_name="__main__")
    else:
        sys.path.insert(0, os.getcwd())
        runpy.run_module(target, run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(peak)
"""


def run(target: str, *args: str) -> tuple[float, float, str]:
    """Seconds, peak RSS in MB, and what it printed, of one process running `target`."""
    with tempfile.NamedTemporaryFile() as peak, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", PEAK, target, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PEAK_FILE": peak.name},
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        printed = out.read().decode(errors="replace")
        if result.returncode:
            sys.exit(f"{target} {' '.join(args)} failed ({result.returncode}):\n{printed}")
        peak_mb = int(Path(peak.name).read_text()) / 1024
    return seconds, peak_mb, printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        action="append",
        help="a size to measure at (repeat for several); default 100,000",
    )
    parser.add_argument(
        "--retention",
        action="store_true",
        help="then archive and delete every request as the retention run does",
    )
    args = parser.parse_args()
    sizes = sorted(args.requests or [100_000])
    url = database_url("bench/audit_export.py")
    recreate_database(url)
    setup_django()
    world = prepare()

    from approvals.audit_export.signing import public_key_pem

    workdir = Path(tempfile.mkdtemp(prefix="signoff-bench-audit-"))
    key = workdir / "public.pem"
    key.write_text(public_key_pem())
    rows = []
    seeded = 0
    for size in sizes:
        spent = seed(world, seeded + 1, size)
        seeded = size
        print(f"{size:,} requests, {size * EVENTS_PER_REQUEST:,} events ({spent:.0f} s to seed)")
        bundle = workdir / f"bundle-{size}.zip"
        export_s, export_mb, _ = run("manage.py", "export_audit", "--out", str(bundle))
        verify_s, verify_mb, printed = run(
            "approvals.verify_bundle", str(bundle), "--public-key", str(key)
        )
        size_mb = bundle.stat().st_size / 1e6
        print(f"  export: {export_s:.1f} s, {size_mb:.1f} MB bundle, peak RSS {export_mb:.0f} MB")
        print(f"  verify: {verify_s:.1f} s, peak RSS {verify_mb:.0f} MB: {printed.strip()}")
        rows.append((size, export_s, size_mb, export_mb, verify_s, verify_mb))
        bundle.unlink()
    print()
    print(
        "| requests | events | export s | bundle MB | export peak RSS MB | verify s "
        "| verify peak RSS MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, export_s, size_mb, export_mb, verify_s, verify_mb in rows:
        print(
            f"| {size:,} | {size * EVENTS_PER_REQUEST:,} | {export_s:.1f} | {size_mb:.1f} | "
            f"{export_mb:.0f} | {verify_s:.1f} | {verify_mb:.0f} |"
        )
    if args.retention:
        retire_all(seeded)


def retire_all(requests: int) -> None:
    from django.utils import timezone

    from approvals.models import RetiredRequest
    from approvals.services.definitions import definition_import

    definition_import(
        config={**FLOW, "retention": "P1D"}, actor=None, publish=True, now=timezone.now()
    )
    seconds, peak_mb, printed = run("manage.py", "apply_retention")
    retired = RetiredRequest.objects.count()
    bundles = RetiredRequest.objects.values("bundle_key").distinct().count()
    print()
    summary = next((line for line in printed.splitlines() if "(retention " in line), printed)
    print(f"retention: {summary.strip()}")
    print(
        f"| requests | archived and deleted | bundles | s | requests/s | peak RSS MB |\n"
        f"|---:|---:|---:|---:|---:|---:|\n"
        f"| {requests:,} | {retired:,} | {bundles} | {seconds:.1f} | {retired / seconds:.0f} "
        f"| {peak_mb:.0f} |"
    )


if __name__ == "__main__":
    main()
