"""My requests: paged like the inbox, searched by title and reference, filtered by status."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from approvals.services.instances import instance_start, instance_withdraw
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW
from tests.approvals.views.conftest import start

pytestmark = pytest.mark.django_db


def titles(html: str) -> list[str]:
    return re.findall(r'<a href="/requests/\d+/">([^<]+)</a>', html)


def decide(task, event: str, actor, comment: str = "") -> None:
    task_decide(task_id=task.pk, event=event, comment=comment, actor=actor, now=NOW)


def test_more_than_a_page_is_paged_not_cut(client: Client, review, requester):
    for n in range(30):
        start(requester, title=f"Request {n:02}")
    client.force_login(requester)
    first = client.get("/requests/").content.decode()
    assert titles(first) == [f"Request {n:02}" for n in range(29, 4, -1)]
    assert 'href="?page=2"' in first and "Previous page" not in first
    second = client.get("/requests/?page=2").content.decode()
    assert titles(second) == [f"Request {n:02}" for n in range(4, -1, -1)]
    assert "Next page" not in second and 'href="?page=1"' in second


def test_search_finds_title_and_reference(client: Client, review, requester):
    start(requester, title="Laptop for Ann")
    start(requester, title="Chair")
    instance_start(
        definition_key="review",
        context={"title": "Desk", "amount": 10},
        business_key="PO-77",
        actor=requester,
        now=NOW,
    )
    client.force_login(requester)
    assert titles(client.get("/requests/?q=laptop").content.decode()) == ["Laptop for Ann"]
    html = client.get("/requests/?q=po-77").content.decode()
    assert titles(html) == ["Desk"] and "PO-77" in html
    html = client.get("/requests/?q=nothing-like-it").content.decode()
    assert "None of your requests matches these filters." in html


def test_status_filter(client: Client, review, requester, reviewer):
    start(requester, title="Waiting")
    answer = start(requester, title="Answer me")
    decide(answer.tasks.get(), "REQUEST_CHANGES", reviewer, "Which model?")
    done = start(requester, title="Approved one")
    decide(done.tasks.get(), "APPROVE", reviewer)
    gone = start(requester, title="Changed my mind")
    instance_withdraw(instance_id=gone.pk, actor=requester, now=NOW)
    client.force_login(requester)

    def listed(status: str) -> set[str]:
        return set(titles(client.get(f"/requests/?status={status}").content.decode()))

    assert listed("active") == {"Waiting", "Answer me"}
    assert listed("needs_answer") == {"Answer me"}
    assert listed("done") == {"Approved one"}
    assert listed("withdrawn") == {"Changed my mind"}
    assert listed("") == {"Waiting", "Answer me", "Approved one", "Changed my mind"}
    html = client.get("/requests/?status=needs_answer&q=answer").content.decode()
    assert titles(html) == ["Answer me"] and '<option value="needs_answer" selected>' in html


@pytest.mark.parametrize(
    "query", ["status=bogus", "page=0", "page=abc", "page=-3", "q=" + "x" * 300]
)
def test_bad_parameters_fall_back_to_the_whole_first_page(client: Client, review, requester, query):
    start(requester, title="Still here")
    client.force_login(requester)
    response = client.get(f"/requests/?{query}")
    assert response.status_code == 200 and titles(response.content.decode()) == ["Still here"]


def test_a_page_past_the_end_is_empty_not_an_error(client: Client, review, requester):
    start(requester, title="Only one")
    client.force_login(requester)
    response = client.get("/requests/?page=9")
    assert response.status_code == 200 and titles(response.content.decode()) == []
    assert "Previous page" in response.content.decode()


def test_the_filter_sends_only_the_table_to_htmx(client: Client, review, requester):
    start(requester, title="Laptop")
    client.force_login(requester)
    html = client.get("/requests/?q=lap", headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<div id="requests-table">') and "Laptop" in html


def test_an_outsider_finds_none_of_them(client: Client, review, requester, outsider):
    instance_start(
        definition_key="review",
        context={"title": "Secret laptop", "amount": 10},
        business_key="PO-9",
        actor=requester,
        now=NOW,
    )
    client.force_login(outsider)
    for query in ("", "?q=secret", "?q=PO-9", "?status=active"):
        assert titles(client.get(f"/requests/{query}").content.decode()) == []
