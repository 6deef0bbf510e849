"""Workflows, starting requests, reading them, sending external events, history."""

from __future__ import annotations

import pytest

from approvals.models import AuditEvent, WorkflowInstance
from tests.approvals.flows import publish, review_flow

pytestmark = pytest.mark.django_db


# ----- workflows


def test_workflows_lists_published_definitions_with_their_form(api, requester):
    publish(review_flow())
    response = api(requester).get("/api/v1/workflows/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    (workflow,) = body["results"]
    assert workflow["key"] == "review" and workflow["version"] == 1
    assert workflow["form_schema"]["required"] == ["title", "amount"]


def test_anonymous_and_bad_tokens_get_401(api, requester):
    publish(review_flow())
    anonymous = api(None)
    response = anonymous.get("/api/v1/workflows/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer sgf_" + "x" * 40)
    assert anonymous.get("/api/v1/workflows/").status_code == 401
    response = anonymous.post(
        "/api/v1/workflows/review/instances/", {"context": {"amount": 1}}, format="json"
    )
    assert response.status_code == 401
    assert not WorkflowInstance.objects.exists()


# ----- starting


def test_start_creates_the_request_and_answers_201(api, requester):
    publish(review_flow())
    response = api(requester).post(
        "/api/v1/workflows/review/instances/",
        {"context": {"title": "Laptop", "amount": 900}, "business_key": "PO-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    instance = WorkflowInstance.objects.get()
    assert body["id"] == instance.pk
    assert (body["state"], body["status"], body["requester"]) == ("review", "active", "rita")
    assert body["title"] == "Laptop" and body["business_key"] == "PO-1"
    assert body["context"] == {"title": "Laptop", "amount": 900, "revisions": 0}
    assert [t["state"] for t in body["open_tasks"]] == ["review"]
    assert body["open_tasks"][0]["decisions"] == ["APPROVE", "REJECT", "REQUEST_CHANGES"]
    assert body["accepted_events"] == []  # rita is no operator
    started = AuditEvent.objects.get(instance=instance, event="instance.started")
    assert started.channel == "api" and started.actor == requester


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"context": {"title": "Laptop"}}, {"context.amount": ["This field is required."]}),
        (
            {"context": {"title": "Laptop", "amount": -1}},
            {"context.amount": ["-1 is less than the minimum of 0."]},
        ),
        ({"context": ["not", "an", "object"]}, {"context": ["Must be a JSON object."]}),
        ({}, {"context": ["This field is required."]}),
        (
            {"context": {"title": "a", "amount": 1}, "title": "x" * 201},
            {"title": ["Ensure this field has no more than 200 characters."]},
        ),
        (
            {"context": {"title": "nul \x00 byte", "amount": 1}},
            {"context.title": ["Text may not contain NUL characters."]},
        ),
    ],
)
def test_start_with_bad_input_is_400_with_field_messages(api, requester, body, fields):
    publish(review_flow())
    response = api(requester).post("/api/v1/workflows/review/instances/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert not WorkflowInstance.objects.exists()


def test_a_business_key_taken_in_the_workflow_is_400_naming_the_field(api, requester, outsider):
    publish(review_flow())
    url = "/api/v1/workflows/review/instances/"
    body = {"context": {"title": "Laptop", "amount": 900}, "business_key": "PO-API-1"}
    assert api(requester).post(url, body, format="json").status_code == 201
    # Someone else, who cannot see the first request, learns only that the key is taken.
    again = api(outsider).post(url, {**body, "title": "Another"}, format="json")
    assert again.status_code == 400
    assert again.json() == {
        "code": "invalid",
        "detail": "the reference 'PO-API-1' is taken",
        "fields": {
            "business_key": [
                "Another request of this workflow already has the reference 'PO-API-1'."
            ]
        },
    }
    assert WorkflowInstance.objects.count() == 1
    too_long = api(requester).post(url, {**body, "business_key": "x" * 101}, format="json")
    assert too_long.status_code == 400 and "business_key" in too_long.json()["fields"]


def test_the_title_defaults_to_the_workflow_s_template(api, requester):
    flow = review_flow()
    flow["title"] = "{title} for {requester}"
    publish(flow)
    response = api(requester).post(
        "/api/v1/workflows/review/instances/",
        {"context": {"title": "Laptop", "amount": 900}},
        format="json",
    )
    assert response.json()["title"] == "Laptop for Rita Requester"
    listed = api(requester).get("/api/v1/workflows/").json()
    assert [(w["title"], w["name"]) for w in listed["results"]] == [
        ("{title} for {requester}", "Review")
    ]


def test_malformed_json_is_400(api, requester):
    publish(review_flow())
    response = api(requester).post(
        "/api/v1/workflows/review/instances/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_start_of_an_unknown_or_draft_workflow_is_404(api, requester):
    response = api(requester).post(
        "/api/v1/workflows/nope/instances/", {"context": {}}, format="json"
    )
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


# ----- reading


def test_instances_lists_only_what_the_caller_may_see(api, review, requester, reviewer, outsider):
    assert api(outsider).get("/api/v1/instances/").json()["count"] == 0
    assert [i["id"] for i in api(requester).get("/api/v1/instances/").json()["results"]] == [
        review.pk
    ]
    # The reviewer sees it through the manager role's open task.
    assert api(reviewer).get("/api/v1/instances/").json()["count"] == 1


def test_instances_filter_by_workflow_state_and_status(api, review, requester):
    client = api(requester)
    assert client.get("/api/v1/instances/?workflow=review&state=review").json()["count"] == 1
    assert client.get("/api/v1/instances/?status=completed").json()["count"] == 0
    assert client.get("/api/v1/instances/?workflow=other").json()["count"] == 0
    response = client.get("/api/v1/instances/?status=sideways")
    assert response.status_code == 400
    assert "status" in response.json()["fields"]


def test_list_paginates(api, requester, settings):
    from approvals.services.instances import instance_start
    from tests.approvals.flows import NOW

    settings.API_PAGE_SIZE = 2
    publish(review_flow())
    for n in range(3):
        instance_start(
            definition_key="review",
            context={"title": f"#{n}", "amount": n},
            actor=requester,
            now=NOW,
        )
    client = api(requester)
    first = client.get("/api/v1/instances/").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"]
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert client.get("/api/v1/instances/?page=9").status_code == 404


def test_detail_for_the_requester_and_404_for_an_outsider(api, review, requester, outsider):
    response = api(requester).get(f"/api/v1/instances/{review.pk}/")
    assert response.status_code == 200
    assert response.json()["states"] == ["review"]
    assert api(outsider).get(f"/api/v1/instances/{review.pk}/").status_code == 404
    assert api(requester).get("/api/v1/instances/999999/").status_code == 404


def test_history_and_its_verification(api, review, requester, outsider):
    client = api(requester)
    response = client.get(f"/api/v1/instances/{review.pk}/history/")
    assert response.status_code == 200
    events = response.json()["results"]
    assert [e["event"] for e in events] == ["instance.started", "task.created"]
    assert events[0]["actor"] == "rita" and events[1]["prev_hash"] == events[0]["hash"]
    verify = client.get(f"/api/v1/instances/{review.pk}/history/verify/").json()
    assert verify == {
        "ok": True,
        "events": 2,
        "head": events[1]["hash"],
        "broken_seq": None,
        "problem": None,
    }
    assert api(outsider).get(f"/api/v1/instances/{review.pk}/history/").status_code == 404
    assert api(outsider).get(f"/api/v1/instances/{review.pk}/history/verify/").status_code == 404


def test_verify_names_the_first_broken_link(api, review, requester):
    # Audit rows are append-only (a trigger on PostgreSQL): simulate a deleted tail instead.
    WorkflowInstance.objects.filter(pk=review.pk).update(audit_seq=3)
    verify = api(requester).get(f"/api/v1/instances/{review.pk}/history/verify/").json()
    assert verify["ok"] is False and verify["broken_seq"] == 3
    assert "events deleted" in verify["problem"]


# ----- external events


def test_integrator_sends_an_event_and_gets_the_new_state(api, awaiting_payment, integrator):
    client = api(integrator)
    detail = client.get(f"/api/v1/instances/{awaiting_payment.pk}/").json()
    assert detail["accepted_events"] == ["PAYMENT_RECEIVED"]
    response = client.post(
        f"/api/v1/instances/{awaiting_payment.pk}/events/",
        {"event": "PAYMENT_RECEIVED", "data": {"amount": 500}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["state"], body["status"]) == ("paid", "completed")
    assert body["context"]["paid"] == 500 and body["accepted_events"] == []
    moved = AuditEvent.objects.get(instance=awaiting_payment, event="transition", to_state="paid")
    assert moved.channel == "api" and moved.actor == integrator


def test_event_the_state_does_not_accept_is_409_naming_state_and_events(
    api, awaiting_payment, integrator
):
    response = api(integrator).post(
        f"/api/v1/instances/{awaiting_payment.pk}/events/", {"event": "SHIPPED"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert body["current_state"] == "awaiting_payment"
    assert body["accepted_events"] == ["PAYMENT_RECEIVED"]
    awaiting_payment.refresh_from_db()
    assert awaiting_payment.state == "awaiting_payment"


def test_a_guard_that_refuses_is_409(api, awaiting_payment, integrator):
    response = api(integrator).post(
        f"/api/v1/instances/{awaiting_payment.pk}/events/",
        {"event": "PAYMENT_RECEIVED", "data": {"amount": 1}},
        format="json",
    )
    assert response.status_code == 409
    assert "Payment received is not possible now" in response.json()["detail"]


def test_a_task_decision_sent_as_an_event_is_409(api, review, integrator):
    response = api(integrator).post(
        f"/api/v1/instances/{review.pk}/events/", {"event": "APPROVE"}, format="json"
    )
    assert response.status_code == 409
    assert "decide it on the task" in response.json()["detail"]


def test_an_operator_who_cannot_read_requests_may_still_send_events(
    api, awaiting_payment, operator
):
    response = api(operator).post(
        f"/api/v1/instances/{awaiting_payment.pk}/events/",
        {"event": "PAYMENT_RECEIVED", "data": {"amount": 500}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["state"] == "paid"
    assert api(operator).get(f"/api/v1/instances/{awaiting_payment.pk}/").status_code == 404
    missing = api(operator).post("/api/v1/instances/999999/events/", {"event": "X"}, format="json")
    assert missing.status_code == 404


def test_requester_who_sees_it_is_403_and_outsider_404(api, awaiting_payment, requester, outsider):
    url = f"/api/v1/instances/{awaiting_payment.pk}/events/"
    body = {"event": "PAYMENT_RECEIVED", "data": {"amount": 500}}
    version = awaiting_payment.version
    response = api(requester).post(url, body, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "code": "not_allowed",
        "detail": "you may not send events to requests",
    }
    assert api(outsider).post(url, body, format="json").status_code == 404
    awaiting_payment.refresh_from_db()
    assert awaiting_payment.state == "awaiting_payment" and awaiting_payment.version == version


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "event"),
        ({"event": ""}, "event"),
        ({"event": "has spaces"}, "event"),
        ({"event": "PAYMENT_RECEIVED", "data": [1, 2]}, "data"),
        ({"event": "PAYMENT_RECEIVED", "data": "x"}, "data"),
    ],
)
def test_event_with_bad_input_is_400(api, awaiting_payment, integrator, body, field):
    response = api(integrator).post(
        f"/api/v1/instances/{awaiting_payment.pk}/events/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_required_field_with_a_default_may_be_left_out(api, requester):
    config = review_flow()
    config["form"]["required"].append("currency")
    config["form"]["properties"]["currency"] = {
        "type": "string",
        "enum": ["EUR", "USD"],
        "default": "EUR",
    }
    publish(config)
    client = api(requester)
    response = client.post(
        "/api/v1/workflows/review/instances/",
        {"context": {"title": "Laptop", "amount": 900}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["context"]["currency"] == "EUR"
    # A value that is sent is still checked, and its message is given once.
    response = client.post(
        "/api/v1/workflows/review/instances/",
        {"context": {"title": "Laptop", "amount": 900, "currency": "YEN"}},
        format="json",
    )
    assert response.status_code == 400
    (message,) = response.json()["fields"]["context.currency"]
    assert "YEN" in message
    assert WorkflowInstance.objects.count() == 1
