"""After a decision the reviewer is back where they were (tab, filters, page) or, with
"Approve and open next", on the next task of that inbox; the inbox opens on work."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import TaskStatus
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW
from tests.approvals.views.conftest import snapshot, start

pytestmark = pytest.mark.django_db

SAVED = "/inbox/?tab=queue&workflow=review&sort=age&page=1"


def test_a_decision_returns_to_the_tab_filters_and_page_last_seen(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    client.get(SAVED)
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.status_code == 302 and response.headers["Location"] == SAVED


def test_a_delegation_returns_there_too(client: Client, review, requester, reviewer, reviewer2):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    client.get("/inbox/?tab=queue&q=lap")
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": "Mia Manager"})
    assert response.headers["Location"] == "/inbox/?tab=queue&q=lap"


def test_without_an_inbox_seen_a_decision_goes_to_the_inbox(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    session = client.session
    session["signoff_inbox_url"] = "https://evil.example/inbox/"
    session.save()
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.headers["Location"] == "/inbox/"


def test_approve_and_open_next_opens_the_next_task_of_that_inbox(
    client: Client, review, requester, reviewer
):
    one, two, three = (start(requester, title=t).tasks.get() for t in ("A", "B", "C"))
    client.force_login(reviewer)
    client.get("/inbox/?tab=queue&sort=age")
    html = client.get(f"/tasks/{one.pk}/").content.decode()
    assert 'name="then" value="next"' in html and "Approve and open next" in html
    response = client.post(f"/tasks/{one.pk}/decide/", {"then": "next", "comment": "ok"})
    assert response.headers["Location"] == f"/tasks/{two.pk}/"
    one.refresh_from_db()
    assert one.status == TaskStatus.DONE and one.decision.event == "APPROVE"
    assert client.post(f"/tasks/{two.pk}/decide/", {"then": "next"}).headers["Location"] == (
        f"/tasks/{three.pk}/"
    )
    last = client.post(f"/tasks/{three.pk}/decide/", {"then": "next"}, follow=True)
    assert last.redirect_chain[-1][0] == "/inbox/?tab=queue&sort=age"
    assert "Nothing else waits in this tab." in last.content.decode()


def test_open_next_keeps_to_the_filters(client: Client, review, requester, reviewer):
    laptop = start(requester, title="Laptop").tasks.get()
    start(requester, title="Desk")
    other_laptop = start(requester, title="Laptop bag").tasks.get()
    client.force_login(reviewer)
    client.get("/inbox/?tab=queue&q=laptop&sort=age")
    response = client.post(f"/tasks/{laptop.pk}/decide/", {"then": "next"})
    assert response.headers["Location"] == f"/tasks/{other_laptop.pk}/"


def test_open_next_is_only_an_approval_where_approving_is_allowed(
    client: Client, review, requester, reviewer, outsider
):
    task = start(requester).tasks.get()
    task_decide(task_id=task.pk, event="REQUEST_CHANGES", comment="Which?", actor=reviewer, now=NOW)
    own = task.instance.tasks.get(status=TaskStatus.CLAIMED)
    client.force_login(requester)
    assert "Approve and open next" not in client.get(f"/tasks/{own.pk}/").content.decode()
    before = snapshot()
    response = client.post(f"/tasks/{own.pk}/decide/", {"then": "next"})
    assert response.status_code == 400 and snapshot() == before
    fresh = start(requester, title="Other").tasks.get()
    client.force_login(outsider)
    before = snapshot()
    assert client.post(f"/tasks/{fresh.pk}/decide/", {"then": "next"}).status_code == 404
    assert snapshot() == before


def test_the_inbox_opens_on_the_first_tab_that_has_work(
    client: Client, review, requester, reviewer, reviewer2, outsider
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    html = client.get("/inbox/").content.decode()
    assert 'data-tab="queue" aria-current="page"' in html and f'data-task="{task.pk}"' in html
    assert "/inbox/counts/?tab=queue" in html
    task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    assert 'data-tab="mine" aria-current="page"' in client.get("/inbox/").content.decode()
    client.force_login(reviewer2)
    assert 'data-tab="mine" aria-current="page"' in client.get("/inbox/").content.decode()
    client.force_login(outsider)
    html = client.get("/inbox/").content.decode()
    assert 'data-tab="mine" aria-current="page"' in html and 'class="inbox-row"' not in html


def test_an_asked_for_tab_is_kept_even_when_empty(client: Client, review, requester, reviewer):
    start(requester)
    client.force_login(reviewer)
    assert 'data-tab="mine" aria-current="page"' in client.get("/inbox/?tab=mine").content.decode()


def test_open_next_goes_on_down_the_page_it_was_opened_from(
    client: Client, review, requester, reviewer
):
    tasks = [start(requester, title=f"R{n:02}").tasks.get() for n in range(28)]
    client.force_login(reviewer)
    client.get("/inbox/?tab=queue&sort=age&page=2")
    response = client.post(f"/tasks/{tasks[25].pk}/decide/", {"then": "next"})
    assert response.headers["Location"] == f"/tasks/{tasks[26].pk}/"
    response = client.post(f"/tasks/{tasks[27].pk}/decide/", {"then": "next"})
    # The last row of the list: on from the top of the tab.
    assert response.headers["Location"] == f"/tasks/{tasks[0].pk}/"
