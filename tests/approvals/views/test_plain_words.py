"""What requesters and reviewers read on the pages: words, not the engine's terms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.approvals.flows import publish, review_flow
from tests.approvals.views.conftest import start

pytestmark = pytest.mark.django_db


def routed() -> dict[str, Any]:
    """A manager's APPROVE goes on to a director from 10,000 up (said in a description)."""
    flow = review_flow(sla="P2D")
    flow["states"]["review"]["on"]["APPROVE"] = [
        {
            "target": "director",
            "guard": "amount >= 10000",
            "description": "the amount is 10,000 or more",
        },
        {"target": "approved"},
    ]
    flow["states"]["director"] = {
        "meta": {"label": "Director approval", "task": {"roles": ["director"]}},
        "on": {"APPROVE": "approved", "REJECT": "rejected"},
    }
    flow["states"]["review"]["meta"]["label"] = "Manager approval"
    return flow


def words_of(html: str) -> str:
    """The text of a page as a person reads it, the diagram's lines included."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def flow(db):
    return publish(routed())


def test_pages_show_the_readers_diagram(client: Client, flow, requester, reviewer):
    instance = start(requester, amount=12000)
    client.force_login(requester)
    for url in (f"/requests/{instance.pk}/", f"/requests/{instance.pk}/diagram/"):
        html = client.get(url).content.decode()
        assert "sd-reader" in html
        assert "Approve (the amount is 10,000 or more)" in words_of(html)
        assert "Manager · 2 days" in html
        assert "[amount &gt;= 10000]" not in html and "P2D" not in html
    assert (
        f'href="/requests/{instance.pk}/diagram/"'
        in client.get(f"/requests/{instance.pk}/").content.decode()
    )


def test_the_admin_keeps_the_technical_diagram(client: Client, flow, requester, admin_user):
    instance = start(requester, amount=12000)
    client.force_login(admin_user)
    html = client.get(f"/admin/approvals/workflowinstance/{instance.pk}/change/").content.decode()
    assert "[amount &gt;= 10000]" in html and "sd-reader" not in html


def test_the_full_size_diagram_is_refused_to_an_outsider(client: Client, flow, requester, outsider):
    instance = start(requester)
    client.force_login(outsider)
    assert client.get(f"/requests/{instance.pk}/diagram/").status_code == 404
    client.logout()
    assert client.get(f"/requests/{instance.pk}/diagram/").status_code == 302
    assert client.post(f"/requests/{instance.pk}/diagram/").status_code == 302
    client.force_login(requester)
    assert client.post(f"/requests/{instance.pk}/diagram/").status_code == 405
    assert client.get("/requests/999999/diagram/").status_code == 404
