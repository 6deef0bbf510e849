"""The inbox: tabs, filters, sorting, paging, bulk approval, and what each person sees."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import OutOfOffice
from approvals.models import LIVE_TASK_STATUSES, Decision, Task
from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide, task_delegate
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.views.conftest import snapshot, start

pytestmark = pytest.mark.django_db


def rows(client: Client, query: str = "") -> list[str]:
    """The task ids listed, in order."""
    html = client.get(f"/inbox/?{query}").content.decode()
    return [chunk.split('"', 1)[0] for chunk in html.split('class="inbox-row" data-task="')[1:]]


def count(client: Client, tab: str, query: str = "") -> str:
    """A tab's count, as the tab bar loaded after the rows shows it."""
    html = client.get(f"/inbox/counts/?{query}").content.decode()
    return html.split(f'data-count="{tab}">', 1)[1].split("<", 1)[0]


def test_the_inbox_needs_a_login(client: Client, db):
    for url in ("/inbox/", "/inbox/counts/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]


def test_counts_load_after_the_rows_and_stop_at_the_cap(
    client: Client, review, requester, reviewer, monkeypatch
):
    from approvals import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    for n in range(3):
        start(requester, title=f"R{n}")
    client.force_login(reviewer)
    page = client.get("/inbox/?tab=queue&q=R").content.decode()
    assert 'hx-get="/inbox/counts/?tab=queue&amp;q=R"' in page and 'data-count="queue">…' in page
    assert count(client, "queue", "tab=queue&q=R") == "2+"
    assert count(client, "queue", "q=R1") == "1"


def test_each_tab_holds_its_tasks(client: Client, review, requester, reviewer, reviewer2):
    queued = start(requester, title="Queued").tasks.get()
    claimed = start(requester, title="Claimed").tasks.get()
    delegated = start(requester, title="Delegated").tasks.get()
    decided = start(requester, title="Decided").tasks.get()
    task_claim(task_id=claimed.pk, actor=reviewer, now=NOW)
    handed = task_delegate(task_id=delegated.pk, to_user_id=reviewer.pk, actor=reviewer2, now=NOW)
    task_decide(task_id=decided.pk, event="APPROVE", actor=reviewer, now=NOW)

    client.force_login(reviewer)
    assert rows(client, "tab=mine") == [str(claimed.pk)]
    assert rows(client, "tab=queue") == [str(queued.pk)]
    assert rows(client, "tab=delegated") == [str(handed.pk)]
    assert rows(client, "tab=done") == [str(decided.pk)]
    assert count(client, "queue") == "1" and count(client, "done") == "1"


def test_overdue_first_and_sorted_by_age(client: Client, requester, reviewer):
    publish(review_flow(sla="P1D"))  # NOW is weeks ago, so these are overdue today
    old = start(requester, title="Old").tasks.get()
    client.force_login(reviewer)
    assert rows(client, "tab=overdue") == [str(old.pk)]
    html = client.get("/inbox/?tab=queue").content.decode()
    assert "overdue</span>" in html


def test_the_requester_never_sees_their_own_request_to_decide(
    client: Client, review, requester, reviewer
):
    requester.groups.add(*reviewer.groups.all())
    start(requester)
    client.force_login(requester)
    assert rows(client, "tab=queue") == []


def test_an_outsider_sees_nothing(client: Client, review, requester, outsider):
    start(requester)
    client.force_login(outsider)
    for tab in ("mine", "queue", "delegated", "overdue", "done"):
        assert rows(client, f"tab={tab}") == []
        assert count(client, tab) == "0"


def test_filters(client: Client, review, requester, reviewer, reviewer2):
    laptop = start(requester, title="Laptop stand").tasks.get()
    chair = start(reviewer2, title="Office chair").tasks.get()
    client.force_login(reviewer)
    assert rows(client, "tab=queue&q=laptop") == [str(laptop.pk)]
    assert rows(client, "tab=queue&requester=mia") == [str(chair.pk)]
    assert rows(client, "tab=queue&workflow=review&state=review") == [
        str(laptop.pk),
        str(chair.pk),
    ]
    assert rows(client, "tab=queue&workflow=other") == []
    assert count(client, "queue", "q=chair") == "1"
    assert "Nothing matches these filters." in client.get("/inbox/?q=zzz").content.decode()


def test_bad_parameters_fall_back_to_the_defaults(client: Client, review, requester, reviewer):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    response = client.get("/inbox/?tab=bogus&page=abc&sort=sideways")
    assert response.status_code == 200
    assert rows(client, "tab=queue&page=abc") == [str(task.pk)]


def test_sorting_by_age(client: Client, review, requester, reviewer):
    first = start(requester, title="First").tasks.get()
    second = start(requester, title="Second").tasks.get()
    client.force_login(reviewer)
    assert rows(client, "tab=queue&sort=age") == [str(first.pk), str(second.pk)]
    assert rows(client, "tab=queue&sort=-age") == [str(second.pk), str(first.pk)]


def test_paging_and_constant_queries(client: Client, review, requester, reviewer):
    for n in range(3):
        start(requester, title=f"Request {n}")
    client.force_login(reviewer)
    client.get("/inbox/?tab=queue")  # warm the per-process caches (statecharts, roles)
    with CaptureQueriesContext(connection) as few:
        client.get("/inbox/?tab=queue")
    for n in range(3, 30):
        start(requester, title=f"Request {n}")
    with CaptureQueriesContext(connection) as many:
        page_one = client.get("/inbox/?tab=queue").content.decode()
    assert len(many) == len(few)
    assert page_one.count('class="inbox-row"') == 25
    assert 'href="?tab=queue&amp;page=2"' in page_one
    page_two = client.get("/inbox/?tab=queue&page=2").content.decode()
    assert page_two.count('class="inbox-row"') == 5 and "Previous page" in page_two


def test_htmx_gets_only_the_table(client: Client, review, requester, reviewer):
    start(requester)
    client.force_login(reviewer)
    html = client.get("/inbox/?tab=queue", HTTP_HX_REQUEST="true").content.decode()
    assert html.lstrip().startswith('<div id="inbox-table">') and "<html" not in html


def test_a_substitute_sees_the_absent_colleagues_work(
    client: Client, review, requester, reviewer, outsider
):
    today = date.today()
    OutOfOffice.objects.create(
        user=reviewer, substitute=outsider, starts_on=today, ends_on=today + timedelta(days=2)
    )
    queued = start(requester, title="Queued").tasks.get()
    claimed = start(requester, title="Claimed").tasks.get()
    task_claim(task_id=claimed.pk, actor=reviewer, now=NOW)
    client.force_login(outsider)
    assert rows(client, "tab=queue") == [str(queued.pk)]
    assert rows(client, "tab=delegated") == [str(claimed.pk)]


# ----- bulk


def test_bulk_approve_reports_each_item(
    client: Client, review, requester, reviewer, reviewer2, outsider
):
    mine = start(requester, title="Mine").tasks.get()
    taken = start(requester, title="Taken").tasks.get()
    task_decide(task_id=taken.pk, event="APPROVE", actor=reviewer2, now=NOW)
    client.force_login(reviewer)
    response = client.post(
        "/inbox/bulk/", {"tasks": [mine.pk, taken.pk, 999999], "decision": "APPROVE"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 approved, 2 not" in html
    assert "already decided by Mia Manager" in html and "no such task" in html
    assert Decision.objects.filter(task=mine, actor=reviewer).exists()


def test_bulk_by_an_outsider_changes_nothing(client: Client, review, requester, outsider):
    task = start(requester).tasks.get()
    client.force_login(outsider)
    before = snapshot()
    html = client.post("/inbox/bulk/", {"tasks": [task.pk], "decision": "APPROVE"}).content
    assert b"0 approved, 1 not" in html and b"no such task" in html
    assert snapshot() == before


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"tasks": ["x"], "decision": "APPROVE"},
        {"tasks": ["1"], "decision": "REJECT"},  # bulk only approves: saying no needs a reason
        {"tasks": [str(n) for n in range(101)], "decision": "APPROVE"},
    ],
)
def test_bulk_refuses_bad_input(client: Client, review, requester, reviewer, data):
    start(requester)
    client.force_login(reviewer)
    before = snapshot()
    response = client.post("/inbox/bulk/", data, follow=True)
    assert "Choose at least one task (at most 100)." in response.content.decode()
    assert snapshot() == before


def test_bulk_is_post_only_and_csrf_protected(review, requester, reviewer):
    task = start(requester).tasks.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    before = snapshot()
    assert client.get("/inbox/bulk/").status_code == 405
    assert client.post("/inbox/bulk/", {"tasks": [task.pk]}).status_code == 403
    assert snapshot() == before


def test_bulk_never_tells_an_outsider_the_title_of_a_request(
    client: Client, review, requester, outsider
):
    task = start(requester, title="Secret merger budget").tasks.get()
    client.force_login(outsider)
    html = client.post("/inbox/bulk/", {"tasks": [task.pk], "decision": "APPROVE"}).content
    assert b"Secret merger budget" not in html and f"task {task.pk}".encode() in html


def test_free_text_finds_the_title_the_reference_and_the_step_in_any_case(
    client: Client, review, requester, reviewer
):
    laptop = instance_start(
        definition_key="review",
        context={"title": "Ärztliche Geräte", "amount": 10},
        business_key="PO-77",
        actor=requester,
        now=NOW,
    ).tasks.get()
    start(requester, title="Office chair")
    client.force_login(reviewer)
    for q in ("ärztliche", "GERÄTE", "po-77", "PO-7", "che ger"):
        assert rows(client, f"tab=queue&q={q}") == [str(laptop.pk)], q
    assert rows(client, "tab=queue&q=50%25") == []  # LIKE's wildcards are plain characters
    assert rows(client, "tab=queue&q=_") == []
    assert len(rows(client, "tab=queue&q=review")) == 2  # the step's label


def test_free_text_follows_a_title_changed_by_resubmission(
    client: Client, review, requester, reviewer
):
    task = start(requester, title="Laptop").tasks.get()
    task_decide(
        task_id=task.pk, event="REQUEST_CHANGES", comment="Cheaper?", actor=reviewer, now=NOW
    )
    own = task.instance.tasks.get(status="claimed")
    task_decide(
        task_id=own.pk,
        event="RESUBMIT",
        form={"title": "Refurbished notebook", "amount": 900},
        actor=requester,
        now=NOW,
    )
    client.force_login(reviewer)
    again = task.instance.tasks.get(status="open")
    assert rows(client, "tab=queue&q=notebook") == [str(again.pk)]
    assert rows(client, "tab=queue&q=laptop") == []
    assert rows(client, "tab=done&q=notebook") == [str(task.pk)]
    assert all(t.definition_id == task.instance.definition_id for t in task.instance.tasks.all())


@pytest.mark.postgres_only
def test_free_text_on_live_tasks_reads_the_trigram_index(review, requester):
    """The lookup the inbox makes (`search_text__contains`, which Django writes as
    `search_text::text LIKE`) on live tasks is one the partial trigram index answers."""
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index exists only on PostgreSQL")
    start(requester, title="Laptop")
    tasks = Task.objects.filter(status__in=LIVE_TASK_STATUSES, search_text__contains="aptop")
    with connection.cursor() as cursor:
        # A table this small is read whole, or through any other index of live tasks; what
        # matters is that this index can answer. The test's transaction puts them back.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'approvals_task'"
            " AND indexname NOT IN ('task_live_search_trgm', 'approvals_task_pkey')"
        )
        others = [name for (name,) in cursor.fetchall()]
        cursor.execute("DROP INDEX " + ", ".join(others))
    plan = tasks.explain()
    assert "task_live_search_trgm" in plan
