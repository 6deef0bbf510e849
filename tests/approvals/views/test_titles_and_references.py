"""Titles from the definition's template and references on the pages: given on the new-request
page, refused when taken, shown beside the title."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import WorkflowInstance
from tests.approvals.flows import publish, review_flow
from tests.approvals.views.conftest import snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture
def access(db):
    flow = review_flow()
    flow.update(id="access", title="{system} · {requester}")
    flow["form"] = {
        "type": "object",
        "required": ["system"],
        "properties": {"system": {"type": "string", "title": "System", "enum": ["aws", "vpn"]}},
    }
    return publish(flow)


def test_the_workflow_is_named_by_its_id_and_the_request_by_its_values(
    client: Client, access, requester
):
    client.force_login(requester)
    assert "Access" in client.get("/requests/new/").content.decode()
    page = client.get("/requests/new/access/").content.decode()
    assert "<h1>Access</h1>" in page and 'name="request-business_key"' in page
    response = client.post(
        "/requests/new/access/", {"system": "aws", "request-business_key": "  ACC-7 "}
    )
    instance = WorkflowInstance.objects.get()
    assert response.status_code == 302
    assert (instance.title, instance.business_key) == (
        f"aws · {requester.get_full_name()}",
        "ACC-7",
    )
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    assert f'{instance.title} <span class="reference">ACC-7</span></h1>' in html
    listed = client.get("/requests/").content.decode()
    assert '<span class="reference">ACC-7</span>' in listed


def test_a_taken_reference_is_refused_next_to_its_field(
    client: Client, access, requester, reviewer
):
    client.force_login(requester)
    client.post("/requests/new/access/", {"system": "aws", "request-business_key": "ACC-7"})
    before = snapshot()
    client.force_login(reviewer)
    response = client.post(
        "/requests/new/access/", {"system": "vpn", "request-business_key": "ACC-7"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Another request of this workflow already has the reference &#x27;ACC-7&#x27;." in html
    assert 'value="ACC-7"' in html and '<option value="vpn" selected>' in html
    assert snapshot() == before


def test_a_reference_too_long_is_a_field_error(client: Client, access, requester):
    client.force_login(requester)
    response = client.post(
        "/requests/new/access/", {"system": "aws", "request-business_key": "x" * 101}
    )
    assert response.status_code == 400
    assert "Ensure this value has at most 100 characters" in response.content.decode()
    assert not WorkflowInstance.objects.exists()


def test_the_inbox_shows_the_reference_and_the_workflow_s_name(
    client: Client, access, requester, reviewer, outsider
):
    client.force_login(requester)
    client.post("/requests/new/access/", {"system": "vpn", "request-business_key": "ACC-9"})
    client.force_login(reviewer)
    html = client.get("/inbox/?tab=queue").content.decode()
    assert '<span class="reference">ACC-9</span>' in html
    assert '<td data-label="Workflow">Access</td>' in html
    assert '<option value="access">Access</option>' in html
    client.force_login(outsider)
    for url in ("/inbox/?tab=queue&q=ACC-9", "/requests/?q=ACC-9"):
        assert '<span class="reference">ACC-9</span>' not in client.get(url).content.decode()


def test_anonymous_visitors_start_nothing(client: Client, access):
    response = client.post("/requests/new/access/", {"system": "aws", "request-business_key": "A"})
    assert response.status_code == 302 and not WorkflowInstance.objects.exists()
