"""Key fields as inbox columns: a definition's `inbox_columns`, formatted, sortable while the
inbox shows that one workflow."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.views.test_inbox import rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def purchases(db):
    flow = review_flow()
    flow["id"] = "purchase"
    flow["title"] = "Purchase"
    flow["form"]["properties"].update(
        {
            "amount": {"type": "number", "title": "Total amount"},
            "vendor": {"type": "string", "title": "Vendor"},
            "needed_by": {"type": "string", "format": "date", "title": "Needed by"},
        }
    )
    flow["inbox_columns"] = ["amount", "vendor", "needed_by"]
    return publish(flow)


def buy(requester, title: str, amount: float, vendor: str = "", needed_by: str = ""):
    context = {"title": title, "amount": amount}
    if vendor:
        context["vendor"] = vendor
    if needed_by:
        context["needed_by"] = needed_by
    return instance_start(definition_key="purchase", context=context, actor=requester, now=NOW)


def cells(html: str, column: str) -> list[str]:
    return re.findall(rf'<td class="key-column"[^>]*data-column="{column}">([^<]*)</td>', html)


def test_one_workflow_shows_its_columns_formatted(client: Client, purchases, requester, reviewer):
    buy(requester, "Desks", 4200, "Deskly", "2027-06-30")
    buy(requester, "Cable", 12.5)
    client.force_login(reviewer)
    html = client.get("/inbox/?tab=queue&workflow=purchase&sort=age").content.decode()
    headers = re.findall(r'<th class="key-column" data-column="(\w+)"><a[^>]*>([^<]+)</a>', html)
    assert headers == [
        ("amount", "Total amount"),
        ("vendor", "Vendor"),
        ("needed_by", "Needed by"),
    ]
    assert cells(html, "amount") == ["4,200", "12.5"]
    assert cells(html, "vendor") == ["Deskly", "—"]
    assert cells(html, "needed_by") == ["30 Jun 2027", "—"]


def test_every_workflow_at_once_shows_each_row_s_key_fields(
    client: Client, purchases, requester, reviewer
):
    publish(review_flow())
    buy(requester, "Desks", 4200, "Deskly")
    instance_start(
        definition_key="review", context={"title": "Plain", "amount": 5}, actor=requester, now=NOW
    )
    client.force_login(reviewer)
    html = client.get("/inbox/?tab=queue").content.decode()
    assert 'class="key-column"' not in html
    fields = re.findall(r'<span class="key-field"><span class="muted">([^<]+)</span> ([^<]+)', html)
    assert fields == [("Total amount:", "4,200"), ("Vendor:", "Deskly")]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("col:amount", ["Cable", "Chair", "Desks"]),
        ("-col:amount", ["Desks", "Chair", "Cable"]),
        ("col:vendor", ["Chair", "Desks", "Cable"]),  # no vendor: last
        ("-col:vendor", ["Desks", "Chair", "Cable"]),
    ],
)
def test_sorting_by_a_column(client: Client, purchases, requester, reviewer, sort, expected):
    buy(requester, "Desks", 4200, "Deskly")
    buy(requester, "Cable", 12.5)
    buy(requester, "Chair", 310, "Chairs Inc")
    client.force_login(reviewer)
    html = client.get(f"/inbox/?tab=queue&workflow=purchase&sort={sort}").content.decode()
    assert re.findall(r'<a href="/tasks/\d+/">([^<]+)</a>', html) == expected
    assert f'<option value="{sort}" selected>' in html


@pytest.mark.parametrize(
    "query",
    [
        "sort=col:amount",  # no workflow chosen: columns are not sortable
        "workflow=purchase&sort=col:title",  # not one of its columns
        "workflow=purchase&sort=col:",
        "workflow=purchase&sort=bogus",
        "workflow=nope&sort=col:amount",
        "workflow=purchase&sort=" + "x" * 300,
    ],
)
def test_a_sort_it_cannot_do_is_the_due_date(client: Client, purchases, requester, reviewer, query):
    first = buy(requester, "Desks", 4200).tasks.get().pk
    second = buy(requester, "Cable", 12.5).tasks.get().pk
    client.force_login(reviewer)
    response = client.get(f"/inbox/?tab=queue&{query}")
    assert response.status_code == 200
    if "workflow=nope" not in query:
        assert rows(client, f"tab=queue&{query}") == [str(first), str(second)]


def test_an_outsider_sees_no_row_and_no_value(client: Client, purchases, requester, outsider):
    buy(requester, "Desks", 4200, "Deskly")
    client.force_login(outsider)
    for tab in ("mine", "queue", "delegated", "overdue", "done"):
        html = client.get(f"/inbox/?tab={tab}&workflow=purchase&sort=-col:amount").content.decode()
        assert "Deskly" not in html and "4,200" not in html
