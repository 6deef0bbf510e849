"""What a sensitive field costs: encrypting and decrypting it, starting a request, loading one.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench_sensitive \
        .venv/bin/python bench/sensitive_fields.py [--requests 300] [--loads 20]

The database (its name must contain "bench") is dropped, recreated and migrated. Two versions of
one payment workflow are published, the same form with and without `x-sensitive: true` on its
IBAN. Printed: the cryptography alone per call (a data key made and wrapped, unwrapped, one
value sealed and opened), then `instance_start` (a request and its first task, through the
engine) per request, and loading all the requests of each workflow (`--loads` times), with the
ratio sensitive ÷ plain. Production settings (DEBUG off, so no query log). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdb import database_url, recreate_database  # noqa: E402

IBAN = "DE89370400440532013000"


def flow(key: str, hidden: bool) -> dict:
    return {
        "id": key,
        "title": "Payment",
        "initial": "review",
        "form": {
            "type": "object",
            "required": ["title", "iban"],
            "properties": {
                "title": {"type": "string"},
                "amount": {"type": "number"},
                "iban": {"type": "string", "x-sensitive": hidden},
            },
        },
        "states": {
            "review": {"meta": {"task": {"roles": ["manager"]}}, "on": {"APPROVE": "paid"}},
            "paid": {"type": "final"},
        },
    }


def per_call_us(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    url = database_url("bench/sensitive_fields.py")
    recreate_database(url)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="workflow_app.settings",
        DEBUG="false",
        SECRET_KEY="bench-secret-key-0123456789abcdef0123456789",
        AUDIT_CHAIN_KEY="bench-audit-chain-key-0123456789abcdef",
        FIELD_ENCRYPTION_KEYS=f"bench:{base64.b64encode(os.urandom(32)).decode()}",
        SIGNOFF_VAR_DIR=tempfile.mkdtemp(prefix="signoff-bench-sensitive-"),
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from approvals import sensitive
    from approvals.models import WorkflowInstance
    from approvals.services.definitions import definition_import
    from approvals.services.instances import instance_start

    call_command("migrate", verbosity=0)
    Group.objects.get_or_create(name="manager")
    requester = User.objects.create(username="bench-requester")
    for key, hidden in (("plain", False), ("sensitive", True)):
        definition_import(config=flow(key, hidden), actor=None, publish=True, now=timezone.now())

    key, kek, wrapped = sensitive.new_data_key()
    context = {"title": "Desks", "amount": 1200, "iban": IBAN}
    sealed = sensitive.seal(context, {"iban"}, key)
    n = 20000
    calls = {
        "new data key, wrapped": sensitive.new_data_key,
        "data key unwrapped": lambda: sensitive.unwrap(wrapped, kek),
        "one value sealed": lambda: sensitive.seal(context, {"iban"}, key),
        "one value opened": lambda: sensitive.unseal(sealed, key),
    }
    print(f"cryptography alone, per call ({n} calls):")
    for label, call in calls.items():
        print(f"  {label:<26} {per_call_us(call, n):7.1f} µs")

    starts: dict[str, list[float]] = {"plain": [], "sensitive": []}
    # Alternated, after a warm-up, so that neither workflow gets the colder caches.
    for i in range(-20, args.requests):
        for workflow, times in starts.items():
            began = time.perf_counter()
            instance_start(
                definition_key=workflow,
                context={"title": f"Desks {i}", "amount": 1200, "iban": IBAN},
                actor=requester,
                now=timezone.now(),
            )
            if i >= 0:
                times.append((time.perf_counter() - began) * 1000)
    print(f"\ninstance_start, {args.requests} requests each (ms):")
    for workflow, times in starts.items():
        print(
            f"  {workflow:<10} p50 {statistics.median(times):6.2f}  "
            f"p95 {statistics.quantiles(times, n=20)[18]:6.2f}  mean {statistics.fmean(times):6.2f}"
        )
    ratio = statistics.median(starts["sensitive"]) / statistics.median(starts["plain"])
    print(f"  sensitive ÷ plain (p50)  {ratio:.2f}")

    loads = {"plain": 0.0, "sensitive": 0.0}
    for _ in range(args.loads):
        for workflow in loads:
            began = time.perf_counter()
            rows = list(WorkflowInstance.objects.filter(workflow_key=workflow))
            loads[workflow] += (time.perf_counter() - began) * 1000 / args.loads
            assert rows[0].context["iban"] == IBAN
    print(f"\nloading all {args.requests + 20} requests of a workflow (ms, mean of {args.loads}):")
    for workflow, ms in loads.items():
        print(f"  {workflow:<10} {ms:7.2f}  ({ms / (args.requests + 20) * 1000:.1f} µs a request)")
    print(f"  sensitive ÷ plain        {loads['sensitive'] / loads['plain']:.2f}")
    stored = WorkflowInstance.objects.filter(workflow_key="sensitive").values_list(
        "context", flat=True
    )
    assert all(IBAN not in str(row) for row in stored)


if __name__ == "__main__":
    main()
