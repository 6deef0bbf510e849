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
    assert "delegated the task to Mia Manager" in html and "Mia Manager</strong> approved" in html


def test_withdraw_is_confirmed_then_done(client: Client, review, requester, reviewer, outsider):
    instance = start(requester)
    url = f"/requests/{instance.pk}/withdraw/"
    before = snapshot()
    client.force_login(outsider)
    assert client.get(url).status_code == 404 and client.post(url).status_code == 404
    client.force_login(reviewer)
    assert client.get(url).status_code == 403 and client.post(url).status_code == 403
    client.force_login(requester)
    # The request page's button leads to a confirmation; asking changes nothing.
    page = client.get(f"/requests/{instance.pk}/").content.decode()
    assert f'href="{url}"' in page and "<form" not in page.split('id="withdraw"')[0][-200:]
    confirm = client.get(url)
    assert confirm.status_code == 200 and 'id="confirm-withdraw"' in confirm.content.decode()
    assert client.put(url).status_code == 405
    assert snapshot() == before

    client.post(url, {"comment": "not needed"})
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.WITHDRAWN and instance.state == "withdrawn"
    page = client.get(f"/requests/{instance.pk}/").content.decode()
    assert '<span class="badge status-withdrawn" id="status">Withdrawn</span>' in page
    assert 'id="withdraw"' not in page and " · at " not in page
    response = client.post(url, follow=True)
    assert "The request is already withdrawn." in response.content.decode()
    again = client.get(url, follow=True)
    assert "The request is already withdrawn." in again.content.decode()


def test_the_requesters_own_task_withdraws_through_the_same_confirmation(
    client: Client, review, requester, reviewer
):
    instance = start(requester)
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="cheaper?",
        actor=reviewer,
        now=NOW,
    )
    own = instance.tasks.get(status="claimed")
    client.force_login(requester)
    html = client.get(f"/tasks/{own.pk}/").content.decode()
    assert 'value="RESUBMIT"' in html and 'value="WITHDRAW"' not in html
    assert f'href="/requests/{instance.pk}/withdraw/"' in html


def test_the_live_part_is_the_page_without_its_frame(client: Client, review, requester, outsider):
    """What task.js fetches at every live event: one fragment with everything that depends on
    where the request is, and the same refusals as the page."""
    instance = start(requester)
    task = instance.tasks.get()
    client.force_login(requester)
    part = client.get(f"/requests/{instance.pk}/", headers={"HX-Request": "true"})
    html = part.content.decode()
    assert part.status_code == 200 and "<html" not in html and 'id="live-page"' not in html
    assert "HX-Request" in part["Vary"]
    for piece in ('id="status-line"', 'id="waiting"', 'id="timeline"', "<svg", 'id="withdraw"'):
        assert piece in html
    client.force_login(outsider)
    for url in (f"/requests/{instance.pk}/", f"/tasks/{task.pk}/"):
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 404


def test_the_request_shows_its_form_fields_and_step_outputs_only_in_the_history(
    client: Client, requester, operator
):
    """A step's output is in the context under its state's name; it is not a form field."""
    from tests.approvals.services.test_automated_steps import attempt
    from tests.approvals.services.test_automated_steps import start as start_step

    config = {
        "id": "step",
        "title": "Step",
        "initial": "approved",
        "form": {"type": "object", "properties": {"title": {"type": "string"}}},
        "states": {
            "approved": {
                "invoke": {
                    "src": "notify",
                    "input": {"message": "Your purchase order was approved."},
                    "onDone": "done",
                }
            },
            "done": {"type": "final"},
        },
    }
    instance = start_step(requester, config)
    assert attempt(instance) == "done"
    instance.refresh_from_db()
    assert instance.context["approved"] == {"message": "Your purchase order was approved."}
    client.force_login(requester)
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    fields = html.split("<h2>The request</h2>")[1].split("</section>")[0]
    assert 'data-field="approved"' not in fields and "{&#x27;message" not in html
    history = html.split('id="timeline"')[1]
    assert "The automated step Approved finished" in history
    assert "Message: Your purchase order was approved." in history


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
    assert len(many) == len(few) and html.count("anyone in manager") == 25


def test_anonymous_visitors_are_sent_to_sign_in_and_start_nothing(client: Client, typed):
    for url in ("/requests/", "/requests/new/", "/requests/new/review/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
    response = client.post(
        "/requests/new/review/", {"title": "x", "amount": "1", "kind": "hardware"}
    )
    assert response.status_code == 302 and not WorkflowInstance.objects.exists()
