"""The reviewer's inbox on PostgreSQL at 10k and 1M tasks: p50/p95 per tab and filter.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/signoff_bench \
        .venv/bin/python bench/inbox.py [--sizes 10000 1000000] [--repeat 30] \
        [--count-caps 99 999] [--via client|selectors]

The database is migrated, then filled with plain SQL (INSERT ... SELECT generate_series, no
ORM per row) up to each size in turn: 10,000 users, 100 roles, five published two-step
workflows, one request per two tasks (a review task, always decided, then an approval task
that is open, claimed, delegated to someone or closed one way or another, with due dates in
the past and the future), a decision for every done task and a candidate role for every task.
A reviewer holding 20 of the 100 roles then opens the inbox through the Django test client,
`GET /inbox/?tab=...` (the first page of each tab, unfiltered, by workflow and by free text)
and `GET /inbox/counts/?...` (the tab bar with the five capped counts, which the page loads
after its rows; the pseudo-tab "counts"), each case `--repeat` times after a warm-up. The
growth is additive: the rows of the first size stay and more are added, so the second size is
measured on the same reviewer and roles.
Printed: p50/p95 per case and size, the ratio of p95 at the largest size to p95 at the
smallest, and PASS/MISS against the targets; nothing is asserted. `--via selectors` times
what the views run (a page's rows, or the five tab counts) without rendering;
`--count-caps` measures each size again with the tab counts stopping at each value (a what-if
for approvals.selectors.COUNT_CAP). For a quick run: `--sizes 10000 100000`. The database must
hold no more than the smallest size: drop it between runs (dropdb signoff_bench).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import database_url, ensure_database, setup_django  # noqa: E402

USERS = 10_000
ROLES = 100
REVIEWER_ROLES = 20
WORKFLOWS = 5
TASKS_PER_INSTANCE = 2
BATCH = 200_000  # instances per INSERT ... SELECT
TARGET_P95_MS = 100.0
TARGET_RATIO = 1.5
PAGE = 26  # the view's page of 25 and one more row to know whether a next page exists
# Requests made first for the reviewer alone (their review decided by them, the approval live
# in one of their roles, claimed by or delegated to them or open, titled with QUERY_WORD, of
# the workflow filtered on): about 130 in each tab and filter, so that every case renders a
# full page at 10k as at 1M and the ratio compares the same page on a bigger table.
FLOOR = 400
REVIEWER = "bench-reviewer"
# Words the request titles are made of; the free-text case searches for one of them.
WORDS = [
    *("laptop", "monitor", "travel", "contract", "invoice", "licence", "refund", "hiring"),
    *("budget", "vendor", "server", "training", "conference", "furniture", "software"),
    *("phone", "upgrade", "renewal", "audit", "consulting"),
]
QUERY_WORD = "renewal"
TABS = ("mine", "queue", "delegated", "overdue", "done")

# Distribution of the second (approval) task's status, cumulative: most closed, about 12 %
# live (8 % open in a role queue, 4 % claimed by or delegated to someone).
APPROVAL_STATUS = """
    CASE
        WHEN s.r_status < 0.08 THEN 'open'
        WHEN s.r_status < 0.12 THEN 'claimed'
        WHEN s.r_status < 0.92 THEN 'done'
        WHEN s.r_status < 0.96 THEN 'cancelled'
        WHEN s.r_status < 0.98 THEN 'delegated'
        WHEN s.r_status < 0.99 THEN 'escalated'
        ELSE 'expired'
    END
"""


def flow(n: int) -> dict[str, Any]:
    return {
        "id": f"bench-inbox-{n}",
        "title": f"Bench inbox {n}",
        "initial": "review",
        "states": {
            "review": {
                "meta": {"task": {"roles": [f"bench-role-{n}"]}, "label": "Manager review"},
                "on": {"APPROVE": "approve", "REJECT": "rejected"},
            },
            "approve": {
                "meta": {"task": {"roles": [f"bench-role-{n + 1}"]}, "label": "Approval"},
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final"},
        },
    }


# ----- setup (the same database handling as bench/transitions.py)


@dataclass
class World:
    reviewer: Any
    users: list[int]
    roles: list[int]
    definitions: list[int]


def prepare() -> World:
    """Migrate; users, roles, the reviewer and the workflows, once (later runs reuse them)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from approvals.models import DefinitionStatus, WorkflowDefinition
    from approvals.services.definitions import definition_import

    call_command("migrate", verbosity=0)
    User = get_user_model()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """INSERT INTO auth_group (name)
               SELECT 'bench-role-' || n FROM generate_series(0, %s - 1) n
               ON CONFLICT (name) DO NOTHING""",
            [ROLES],
        )
        cur.execute(
            """INSERT INTO accounts_user
                   (password, is_superuser, username, first_name, last_name, email, is_staff,
                    is_active, date_joined, slack_user_id)
               SELECT '!', false, 'bench-user-' || n, 'User', 'No. ' || n, '', false, true,
                      now(), ''
               FROM generate_series(1, %s - 1) n
               ON CONFLICT (username) DO NOTHING""",
            [USERS],
        )
    reviewer, _ = User.objects.get_or_create(
        username=REVIEWER, defaults={"first_name": "Bench", "last_name": "Reviewer"}
    )
    by_name = dict(Group.objects.filter(name__startswith="bench-role-").values_list("name", "pk"))
    roles = [by_name[f"bench-role-{n}"] for n in range(ROLES)]
    others = User.objects.filter(username__startswith="bench-user-").order_by("pk")
    users = [reviewer.pk, *others.values_list("pk", flat=True)]
    with transaction.atomic(), connection.cursor() as cur:
        # Every user holds two roles; the reviewer holds the first REVIEWER_ROLES.
        cur.execute(
            """INSERT INTO accounts_user_groups (user_id, group_id)
               SELECT u.id, r.id
               FROM unnest(%s::bigint[]) WITH ORDINALITY AS u(id, n)
               JOIN unnest(%s::int[]) WITH ORDINALITY AS r(id, k)
                 ON r.k - 1 IN ((u.n * 7) %% %s, (u.n * 13 + 5) %% %s)
               WHERE u.n > 1
               ON CONFLICT DO NOTHING""",
            [users, roles, ROLES, ROLES],
        )
        cur.execute(
            """INSERT INTO accounts_user_groups (user_id, group_id)
               SELECT %s, r FROM unnest(%s::int[]) r ON CONFLICT DO NOTHING""",
            [reviewer.pk, roles[:REVIEWER_ROLES]],
        )
    now = timezone.now()
    for n in range(WORKFLOWS):
        definition_import(config=flow(n), actor=None, publish=True, now=now)
    definitions = list(
        WorkflowDefinition.objects.filter(
            key__startswith="bench-inbox-", status=DefinitionStatus.PUBLISHED
        )
        .order_by("key")
        .values_list("pk", flat=True)
    )
    return World(reviewer, users, roles, definitions)


# ----- seeding


def task_count() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM approvals_task t JOIN approvals_workflowinstance i "
            "ON i.id = t.instance_id JOIN approvals_workflowdefinition d ON d.id = i.definition_id "
            "WHERE d.key LIKE %s",
            ["bench-inbox-%"],
        )
        return int(cur.fetchone()[0])


SEED = """
CREATE TEMP TABLE seed ON COMMIT DROP AS
SELECT n,
       %(i0)s + n AS iid,
       %(t0)s + 2 * n - 1 AS review_id,
       %(t0)s + 2 * n AS approve_id,
       CASE WHEN %(floor)s THEN (%(defs)s::bigint[])[3]
            ELSE (%(defs)s::bigint[])[1 + floor(random() * %(ndefs)s)::int] END AS definition_id,
       (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] AS requester_id,
       -- the reviewer decides 2 %% of reviews and holds 5 %% of claimed approvals
       CASE WHEN %(floor)s OR random() < 0.02 THEN %(reviewer)s
            ELSE (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] END AS reviewer_id,
       CASE WHEN %(floor)s OR random() < 0.05 THEN %(reviewer)s
            ELSE (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] END AS approver_id,
       (%(users)s::bigint[])[1 + floor(random() * %(nusers)s)::int] AS delegator_id,
       (%(roles)s::int[])[1 + floor(random() * %(nroles)s)::int] AS review_role,
       CASE WHEN %(floor)s
            THEN (%(roles)s::int[])[1 + floor(random() * %(nreviewer_roles)s)::int]
            ELSE (%(roles)s::int[])[1 + floor(random() * %(nroles)s)::int] END AS approve_role,
       (%(roles)s::int[])[1 + floor(random() * %(nroles)s)::int] AS extra_role,
       CASE WHEN %(floor)s THEN random() * 0.12 ELSE random() END AS r_status,
       random() AS r_extra,
       CASE WHEN %(floor)s THEN %(query_word)s
            ELSE (%(words)s::text[])[1 + floor(random() * %(nwords)s)::int] END AS word,
       now() - random() * interval '730 days' AS closed_start,
       now() - random() * interval '20 days' AS live_start,
       random() * interval '10 days' AS sla
FROM generate_series(1, %(count)s) n
"""

INSERTS = [
    # requests: live ones recent, closed ones over two years
    f"""
    INSERT INTO approvals_workflowinstance
        (id, definition_id, requester_id, title, business_key, context, state, status, version,
         audit_seq, audit_head, created_at, updated_at, completed_at)
    SELECT s.iid, s.definition_id, s.requester_id,
           initcap(s.word) || ' request ' || s.iid, 'BK-' || s.iid, '{{}}'::jsonb,
           CASE WHEN st.status IN ('open', 'claimed') THEN 'approve'
                WHEN st.status = 'done' THEN 'approved' ELSE 'rejected' END,
           CASE WHEN st.status IN ('open', 'claimed') THEN 'active'
                WHEN st.status = 'done' THEN 'completed'
                WHEN st.status = 'cancelled' THEN 'cancelled' ELSE 'rejected' END,
           4, 4, '', st.start, st.start + interval '2 days',
           CASE WHEN st.status IN ('open', 'claimed') THEN NULL
                ELSE st.start + interval '2 days' END
    FROM seed s, LATERAL (SELECT {APPROVAL_STATUS} AS status) st0,
         LATERAL (SELECT st0.status,
                  CASE WHEN st0.status IN ('open', 'claimed') THEN s.live_start
                       ELSE s.closed_start END AS start) st
    """,
    # the review task, always decided
    """
    INSERT INTO approvals_task
        (id, instance_id, definition_id, search_text, state, visit, label, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         escalation_level, created_at, claimed_at, closed_at, due_at)
    SELECT s.review_id, s.iid, i.definition_id,
           lower(i.title || E'\n' || i.business_key || E'\nManager review'),
           'review', 2, 'Manager review', 'done', false, true, 'any',
           'decision', 0, s.reviewer_id, 0, i.created_at, i.created_at + interval '1 hour',
           i.created_at + interval '1 day', i.created_at + interval '3 days'
    FROM seed s JOIN approvals_workflowinstance i ON i.id = s.iid
    """,
    # the approval task, in any status
    f"""
    INSERT INTO approvals_task
        (id, instance_id, definition_id, search_text, state, visit, label, status,
         for_requester, forbid_requester, rule, kind, reminders_sent, assignee_id,
         delegated_by_id, escalation_level, created_at, claimed_at, closed_at, due_at)
    SELECT s.approve_id, s.iid, i.definition_id,
           lower(i.title || E'\n' || i.business_key || E'\nApproval'),
           'approve', 4, 'Approval', st.status, false, true, 'any',
           'decision', 0,
           CASE WHEN st.status <> 'open' THEN s.approver_id END,
           -- a quarter of the claimed ones were delegated to their assignee
           CASE WHEN st.status = 'claimed' AND s.r_extra < 0.25 THEN s.delegator_id END,
           CASE WHEN st.status = 'escalated' THEN 1 ELSE 0 END,
           i.created_at + interval '1 day',
           CASE WHEN st.status <> 'open' THEN i.created_at + interval '1 day 1 hour' END,
           CASE WHEN st.status NOT IN ('open', 'claimed') THEN i.created_at + interval '2 days'
           END,
           -- live: due between 10 days ago and 10 days ahead; closed: 3 days after opening
           CASE WHEN st.status IN ('open', 'claimed')
                THEN now() - interval '10 days' + 2 * s.sla
                ELSE i.created_at + interval '4 days' END
    FROM seed s JOIN approvals_workflowinstance i ON i.id = s.iid,
         LATERAL (SELECT {APPROVAL_STATUS} AS status) st
    """,
    # candidate roles: one per task, a second one on a tenth of the approvals
    """
    INSERT INTO approvals_task_candidate_groups (task_id, group_id)
    SELECT s.review_id, s.review_role FROM seed s
    UNION ALL
    SELECT s.approve_id, s.approve_role FROM seed s
    UNION ALL
    SELECT s.approve_id, s.extra_role FROM seed s
    WHERE s.r_extra >= 0.9 AND s.extra_role <> s.approve_role
    """,
    # a decision for every done task
    """
    INSERT INTO approvals_decision (task_id, actor_id, event, comment, data, decided_at)
    SELECT t.id, t.assignee_id, 'APPROVE', '', '{}'::jsonb, t.closed_at
    FROM approvals_task t
    WHERE t.id BETWEEN (SELECT min(review_id) FROM seed) AND (SELECT max(approve_id) FROM seed)
      AND t.status = 'done'
    """,
]


def grow(world: World, target: int) -> float:
    """Add requests until the bench workflows hold `target` tasks; seconds spent."""
    from django.db import connection, transaction

    have = task_count()
    missing = (target - have) // TASKS_PER_INSTANCE
    if missing <= 0:
        return 0.0
    started = time.perf_counter()
    done = 0
    while done < missing:
        # The first requests are the floor: every case has a full page at the smallest size
        # too, so that the sizes are compared on the same work.
        floor = have + done == 0
        count = FLOOR if floor else min(BATCH, missing - done)
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM approvals_workflowinstance")
            i0 = cur.fetchone()[0]
            cur.execute("SELECT coalesce(max(id), 0) FROM approvals_task")
            t0 = cur.fetchone()[0]
            cur.execute("SELECT setseed(%s)", [((have + done) % 1000) / 1000])
            cur.execute(
                SEED,
                {
                    "i0": i0,
                    "t0": t0,
                    "count": count,
                    "defs": world.definitions,
                    "ndefs": len(world.definitions),
                    "users": world.users,
                    "nusers": len(world.users),
                    "reviewer": world.reviewer.pk,
                    "roles": world.roles,
                    "nroles": len(world.roles),
                    "words": WORDS,
                    "nwords": len(WORDS),
                    "floor": floor,
                    "nreviewer_roles": REVIEWER_ROLES,
                    "query_word": QUERY_WORD,
                },
            )
            for sql in INSERTS:
                cur.execute(sql)
            for table in ("approvals_workflowinstance", "approvals_task", "approvals_decision"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        done += count
        print(f"  seeded {(have + done * TASKS_PER_INSTANCE):,} tasks", flush=True)
    with connection.cursor() as cur:
        # What autovacuum would do after such a load, done now so every case sees the same
        # statistics and visibility map.
        for table in (
            "approvals_workflowinstance",
            "approvals_task",
            "approvals_task_candidate_groups",
            "approvals_decision",
        ):
            cur.execute(f"VACUUM {table}")
        cur.execute("ANALYZE")
    return time.perf_counter() - started


# ----- measuring


@dataclass(frozen=True)
class Case:
    tab: str
    label: str
    params: tuple[tuple[str, str], ...]


FILTERS = (
    ("first page", ()),
    ("workflow", (("workflow", "bench-inbox-2"),)),
    (f"q={QUERY_WORD}", (("q", QUERY_WORD),)),
)
# The tab bar with the five counts is a request of its own (`/inbox/counts/`), made by the
# page after its rows arrive; measured as the pseudo-tab "counts", once per filter.
COUNTS = "counts"


def cases() -> list[Case]:
    return [Case(tab, label, params) for tab in (*TABS, COUNTS) for label, params in FILTERS]


def via_client(world: World) -> Callable[[Case], int]:
    from django.test import Client

    client = Client()
    client.force_login(world.reviewer)

    def run(case: Case) -> int:
        if case.tab == COUNTS:
            url = "/inbox/counts/?" + urlencode(dict(case.params))
        else:
            url = "/inbox/?" + urlencode({"tab": case.tab, **dict(case.params)})
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"GET {url} answered {response.status_code}")
        if case.tab == COUNTS:
            return response.content.count(b"data-count=")
        return response.content.count(b'class="inbox-row"')

    return run


def via_selectors(world: World) -> Callable[[Case], int]:
    from django.utils import timezone

    from approvals import selectors
    from approvals.permissions import role_ids

    def run(case: Case) -> int:
        # A fresh user object per request, as the view gets (its role cache is per request).
        user = type(world.reviewer).objects.get(pk=world.reviewer.pk)
        filters = selectors.InboxFilters(**dict(case.params))
        now = timezone.now()
        role_ids(user)
        if case.tab == COUNTS:
            return len(selectors.inbox_counts(user, filters, now))
        rows = list(selectors.inbox_tasks(user, case.tab, filters, now)[:PAGE])
        return min(len(rows), PAGE - 1)

    return run


def measure(run: Callable[[Case], int], repeat: int) -> dict[Case, tuple[list[float], int]]:
    """Each case `repeat` times, after one pass over all cases that warms the caches."""
    results = {}
    clock = time.perf_counter
    for case in cases():
        run(case)
    for case in cases():
        rows = run(case)
        latencies = []
        for _ in range(repeat):
            t0 = clock()
            run(case)
            latencies.append(clock() - t0)
        results[case] = (latencies, rows)
        print(
            f"  {case.tab:<10} {case.label:<14} p50 {pct(latencies, 50):7.1f} ms  "
            f"p95 {pct(latencies, 95):7.1f} ms",
            flush=True,
        )
    return results


def counts(world: World) -> dict[str, int]:
    from django.utils import timezone

    from approvals import selectors

    user = type(world.reviewer).objects.get(pk=world.reviewer.pk)
    return selectors.inbox_counts(user, selectors.InboxFilters(), timezone.now())


def pct(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1] * 1000


def mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per case")
    parser.add_argument("--via", choices=["client", "selectors"], default="client")
    parser.add_argument(
        "--count-caps",
        type=int,
        nargs="+",
        help="measure with the tab counts stopping at each of these (what-if for "
        "approvals.selectors.COUNT_CAP, 99 in the app)",
    )
    args = parser.parse_args()
    url = database_url("bench/inbox.py")
    ensure_database(url)
    setup_django()
    world = prepare()
    from approvals import selectors

    app_cap = selectors.COUNT_CAP
    caps = args.count_caps or [app_cap]
    sizes = sorted(args.sizes)
    have = task_count()
    if have > sizes[0]:
        sys.exit(
            f"the database already holds {have:,} bench tasks, more than {sizes[0]:,}: "
            "drop it (dropdb signoff_bench) to measure the smaller size"
        )

    run = (via_client if args.via == "client" else via_selectors)(world)
    results: dict[tuple[int, int], dict[Case, tuple[list[float], int]]] = {}
    for size in sizes:
        spent = grow(world, size)
        n = task_count()
        selectors.COUNT_CAP = app_cap
        print(f"{n:,} tasks ({spent:.0f} s to seed); tab counts {counts(world)}", flush=True)
        for cap in caps:
            selectors.COUNT_CAP = cap
            print(f" tab counts capped at {cap}", flush=True)
            results[size, cap] = measure(run, args.repeat)

    worst = [report(args, sizes, cap, results) for cap in caps]
    if len(caps) > 1:
        print()
        for cap, (p95, ratio) in zip(caps, worst, strict=True):
            print(f"count cap {cap}: worst p95 {p95:.1f} ms, worst ratio {ratio:.2f}")


def report(
    args: argparse.Namespace,
    sizes: list[int],
    cap: int,
    results: dict[tuple[int, int], dict[Case, tuple[list[float], int]]],
) -> tuple[float, float]:
    small, large = sizes[0], sizes[-1]
    print()
    print(
        f"inbox of a reviewer with {REVIEWER_ROLES} of {ROLES} roles, {USERS:,} users, "
        f"{args.repeat} requests per case, via {args.via}, tab counts capped at {cap}"
    )
    head = "".join(f" {f'p50@{s:,}':>12} {f'p95@{s:,}':>12}" for s in sizes)
    print(f"{'tab':<10} {'case':<14} {'rows':>4}{head} {'ratio':>6}  p95<{TARGET_P95_MS:.0f}ms")
    worst_p95, worst_ratio = 0.0, 0.0
    for case in cases():
        line = f"{case.tab:<10} {case.label:<14} {results[large, cap][case][1]:>4}"
        for size in sizes:
            latencies = results[size, cap][case][0]
            line += f" {pct(latencies, 50):>12.1f} {pct(latencies, 95):>12.1f}"
        p95_large = pct(results[large, cap][case][0], 95)
        ratio = p95_large / pct(results[small, cap][case][0], 95)
        worst_p95, worst_ratio = max(worst_p95, p95_large), max(worst_ratio, ratio)
        print(f"{line} {ratio:>6.2f}  {mark(p95_large < TARGET_P95_MS)}")
    print(
        f"worst p95 at {large:,} tasks: {worst_p95:.1f} ms (target < {TARGET_P95_MS:.0f})  "
        f"{mark(worst_p95 < TARGET_P95_MS)}"
    )
    print(
        f"worst ratio p95 {large:,} / {small:,}: {worst_ratio:.2f} (target <= {TARGET_RATIO})  "
        f"{mark(worst_ratio <= TARGET_RATIO)}"
    )
    return worst_p95, worst_ratio


if __name__ == "__main__":
    main()
