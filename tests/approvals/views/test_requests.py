"""Starting a request from the generated form, following it, withdrawing it; who may see it."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import InstanceStatus, InstanceUserPermission, WorkflowInstance
from approvals.services.definitions import definition_import
from approvals.services.task_work import task_decide, task_delegate
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.views.conftest import snapshot, start

pytestmark = pytest.mark.django_db

FORM = {
    "type": "object",
    "required": ["title", "amount", "kind"],
    "properties": {
        "title": {"type": "string", "title": "What is it?", "maxLength": 50},
        "amount": {"type": "number", "title": "Amount", "minimum": 0},
        "kind": {"type": "string", "enum": ["hardware", "software"]},
        "needed_by": {"type": "string", "format": "date"},
        "urgent": {"type": "boolean"},
        "seats": {"type": "integer", "minimum": 1},
        "notes": {"type": "string", "maxLength": 5000, "description": "Anything else."},
        "revisions": {"type": "integer", "default": 0, "readOnly": True},
    },
}


@pytest.fixture
def typed(db):
    return publish({**review_flow(), "form": FORM})


def test_new_request_lists_published_workflows(client: Client, typed, requester):
    client.force_login(requester)
    html = client.get("/requests/new/").content.decode()
    assert 'href="/requests/new/review/"' in html


def test_the_form_is_generated_from_the_schema(client: Client, typed, requester):
    client.force_login(requester)
    html = client.get("/requests/new/review/").content.decode()
    assert "What is it?" in html and 'maxlength="50"' in html
    assert 'type="number"' in html and '<option value="hardware">' in html
    assert 'type="date"' in html and 'type="checkbox"' in html
    assert "<textarea" in html and "Anything else." in html
    assert 'name="revisions"' not in html


def test_submitting_starts_the_request(client: Client, typed, requester):
    client.force_login(requester)
    response = client.post(
        "/requests/new/review/",
        {
            "title": "Monitor",
            "amount": "199.50",
            "kind": "hardware",
            "needed_by": "2026-12-01",
            "urgent": "on",
            "seats": "",
        },
    )
    instance = WorkflowInstance.objects.get()
    assert response.headers["Location"] == f"/requests/{instance.pk}/"
    assert instance.requester == requester and instance.state == "review"
    assert instance.context == {
        "title": "Monitor",
        "amount": 199.5,
        "kind": "hardware",
        "needed_by": "2026-12-01",
        "urgent": True,
        "revisions": 0,
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"amount": "5", "kind": "hardware"}, "This field is required."),
        ({"title": "x", "amount": "-1", "kind": "hardware"}, "greater than or equal to 0"),
        ({"title": "x", "amount": "ten", "kind": "hardware"}, "Enter a number."),
        ({"title": "x", "amount": "1e309", "kind": "hardware"}, "Enter a number."),
        ({"title": "x", "amount": "1", "kind": "food"}, "Select a valid choice."),
        ({"title": "x" * 51, "amount": "1", "kind": "hardware"}, "at most 50 characters"),
        ({"title": "x", "amount": "1", "kind": "hardware", "needed_by": "soon"}, "valid date"),
    ],
)
def test_bad_input_shows_field_errors_and_starts_nothing(
    client: Client, typed, requester, data, error
):
    client.force_login(requester)
    response = client.post("/requests/new/review/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not WorkflowInstance.objects.exists()


def test_unknown_or_unpublished_workflows_are_404(client: Client, typed, requester):
    definition_import(
        config={**review_flow(), "id": "draft-only"}, actor=None, publish=False, now=NOW
    )
    client.force_login(requester)
    assert client.get("/requests/new/draft-only/").status_code == 404
    assert client.get("/requests/new/nope/").status_code == 404
    assert client.post("/requests/new/nope/", {"title": "x"}).status_code == 404
    assert not WorkflowInstance.objects.exists()


def test_my_requests_lists_mine_with_where_each_waits(
    client: Client, review, requester, reviewer, reviewer2
):
    start(requester, title="Mine")
    start(reviewer2, title="Not mine")
    client.force_login(requester)
    html = client.get("/requests/").content.decode()
    assert "Mine" in html and "Not mine" not in html
    assert "anyone in manager" in html and "Active" in html


def test_instance_page_visibility(
    client: Client, review, requester, reviewer, reviewer2, outsider, admin_user
):
    instance = start(requester)
    url = f"/requests/{instance.pk}/"
    for user, status in [
        (requester, 200),
        (reviewer, 200),  # in the role of the live task
        (admin_user, 200),
        (outsider, 404),
    ]:
        client.force_login(user)
        assert client.get(url).status_code == status, user
    client.logout()
    assert client.get(url).status_code == 302


def test_participants_keep_access_through_their_object_permission(
    client: Client, review, requester, reviewer, reviewer2
):
    instance = start(requester)
    task = instance.tasks.get()
    handed = task_delegate(task_id=task.pk, to_user_id=reviewer2.pk, actor=reviewer, now=NOW)
    task_decide(task_id=handed.pk, event="APPROVE", actor=reviewer2, now=NOW)
    assert set(
        InstanceUserPermission.objects.filter(content_object=instance).values_list(
            "user__username", flat=True
        )
    ) == {"rob", "mia"}
    reviewer.groups.clear()  # no longer a manager: access stays through taking part
    client.force_login(reviewer)
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    assert "delegated the task to mia" in html and "Mia Manager</strong> decided: approve" in html


def test_withdraw(client: Client, review, requester, reviewer, outsider):
    instance = start(requester)
    url = f"/requests/{instance.pk}/withdraw/"
    before = snapshot()
    client.force_login(outsider)
    assert client.post(url).status_code == 404
    client.force_login(reviewer)
    assert client.post(url).status_code == 403
    client.force_login(requester)
    assert client.get(url).status_code == 405
    assert snapshot() == before

    client.post(url, {"comment": "not needed"})
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.CANCELLED
    response = client.post(url, follow=True)
    assert "The request is already cancelled." in response.content.decode()


def test_my_requests_costs_the_same_queries_for_3_or_30(client: Client, review, requester):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(3):
        start(requester, title=f"R{n}")
    client.force_login(requester)
    client.get("/requests/")
    with CaptureQueriesContext(connection) as few:
        client.get("/requests/")
    for n in range(3, 30):
        start(requester, title=f"R{n}")
    with CaptureQueriesContext(connection) as many:
        html = client.get("/requests/").content.decode()
    assert len(many) == len(few) and html.count("anyone in manager") == 30


def test_anonymous_visitors_are_sent_to_sign_in_and_start_nothing(client: Client, typed):
    for url in ("/requests/", "/requests/new/", "/requests/new/review/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
    response = client.post(
        "/requests/new/review/", {"title": "x", "amount": "1", "kind": "hardware"}
    )
    assert response.status_code == 302 and not WorkflowInstance.objects.exists()
