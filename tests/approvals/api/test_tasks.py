"""Task lists by scope, claim, unclaim, decide and delegate over the API."""

from __future__ import annotations

from datetime import timedelta

import pytest

from approvals.models import Decision, Task, TaskStatus
from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim
from tests.approvals.flows import EXPENSIVE, NOW, guarded_flow, publish, routed_flow

pytestmark = pytest.mark.django_db


def only_task(instance) -> Task:
    return instance.tasks.get(status__in=["open", "claimed"])


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [t["id"] for t in response.json()["results"]]


def test_scopes_queue_mine_delegated(api, review, reviewer, reviewer2, outsider, requester):
    task = only_task(review)
    client = api(reviewer)
    assert ids(client.get("/api/v1/tasks/?scope=queue")) == [task.pk]
    assert ids(client.get("/api/v1/tasks/")) == [task.pk]  # default: all (mine and queue)
    assert ids(client.get("/api/v1/tasks/?scope=mine")) == []
    # The requester is never offered their own request (forbid_requester), the outsider nothing.
    assert ids(api(requester).get("/api/v1/tasks/?scope=queue")) == []
    assert ids(api(outsider).get("/api/v1/tasks/")) == []

    response = client.post(f"/api/v1/tasks/{task.pk}/claim/")
    assert response.status_code == 200, response.json()
    assert response.json()["assignee"] == "rob" and response.json()["status"] == "claimed"
    assert ids(client.get("/api/v1/tasks/?scope=mine")) == [task.pk]
    assert ids(api(reviewer2).get("/api/v1/tasks/?scope=queue")) == []

    response = client.post(f"/api/v1/tasks/{task.pk}/delegate/", {"to": "mia"}, format="json")
    assert response.status_code == 200, response.json()
    successor = response.json()
    assert (successor["assignee"], successor["delegated_by"]) == ("mia", "rob")
    assert ids(api(reviewer2).get("/api/v1/tasks/?scope=delegated")) == [successor["id"]]
    assert ids(client.get("/api/v1/tasks/?scope=mine")) == []


def test_overdue_scope(api, requester, reviewer):
    publish(routed_flow())
    instance = instance_start(
        definition_key="routed",
        context={"amount": 5000},
        actor=requester,
        now=NOW - timedelta(days=3),
    )
    task = only_task(instance)  # manager step, SLA P2D: overdue by now
    body = api(reviewer).get("/api/v1/tasks/?scope=overdue").json()
    assert [t["id"] for t in body["results"]] == [task.pk]
    assert body["results"][0]["overdue"] is True


def test_unknown_scope_is_400(api, reviewer):
    response = api(reviewer).get("/api/v1/tasks/?scope=everything")
    assert response.status_code == 400
    assert "scope" in response.json()["fields"]


def test_task_detail_visible_to_candidates_not_to_outsiders(api, review, reviewer, outsider):
    task = only_task(review)
    response = api(reviewer).get(f"/api/v1/tasks/{task.pk}/")
    assert response.status_code == 200
    assert response.json()["roles"] == ["manager"]
    assert response.json()["instance"] == review.pk
    assert api(outsider).get(f"/api/v1/tasks/{task.pk}/").status_code == 404
    assert api(reviewer).get("/api/v1/tasks/999999/").status_code == 404


def test_outsider_is_404_and_requester_403_on_every_action(api, review, outsider, requester):
    task = only_task(review)
    actions = [
        ("claim", {}),
        ("unclaim", {}),
        ("decide", {"decision": "APPROVE"}),
        ("delegate", {"to": "rob"}),
    ]
    for action, body in actions:
        response = api(outsider).post(f"/api/v1/tasks/{task.pk}/{action}/", body, format="json")
        assert response.status_code == 404, action
    # The requester sees their request but may not decide it.
    response = api(requester).post(
        f"/api/v1/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, format="json"
    )
    assert response.status_code == 403
    assert "your own request" in response.json()["detail"]
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and not Decision.objects.exists()
    assert review.audit_events.count() == 2


def test_decide_approve_completes_the_request(api, review, reviewer):
    task = only_task(review)
    response = api(reviewer).post(
        f"/api/v1/tasks/{task.pk}/decide/",
        {"decision": "APPROVE", "comment": "fine"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["moved"] is True
    assert body["task"]["status"] == "done" and body["task"]["decisions"] == []
    assert (body["instance"]["state"], body["instance"]["status"]) == ("approved", "completed")
    decision = Decision.objects.get()
    assert (decision.actor, decision.event, decision.comment) == (reviewer, "APPROVE", "fine")
    assert review.audit_events.get(event="task.decided").channel == "api"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"decision": "REJECT"}, {"comment": ["Say why (required)."]}),
        ({"decision": "PAY"}, {"decision": ["Choose one of: APPROVE, REJECT, REQUEST_CHANGES."]}),
        ({}, {"decision": ["This field is required."]}),
        ({"decision": "APPROVE", "comment": "x" * 5001}, None),
        ({"decision": "APPROVE", "data": "nope"}, {"data": ["Must be a JSON object."]}),
    ],
)
def test_decide_with_bad_input_is_400(api, review, reviewer, body, fields):
    task = only_task(review)
    response = api(reviewer).post(f"/api/v1/tasks/{task.pk}/decide/", body, format="json")
    assert response.status_code == 400, response.json()
    if fields is not None:
        assert response.json()["fields"] == fields
    else:
        assert "comment" in response.json()["fields"]
    assert not Decision.objects.exists()


def test_second_decision_is_409_saying_who_decided(api, review, reviewer, reviewer2):
    task = only_task(review)
    api(reviewer).post(f"/api/v1/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, format="json")
    response = api(reviewer2).post(
        f"/api/v1/tasks/{task.pk}/decide/", {"decision": "REJECT", "comment": "no"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_decided"
    assert "already decided by Rob Reviewer" in body["detail"] and "(APPROVE)" in body["detail"]
    assert Decision.objects.count() == 1


def test_claim_of_a_task_claimed_by_someone_else_is_409(api, review, reviewer, reviewer2):
    task = only_task(review)
    task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    response = api(reviewer2).post(f"/api/v1/tasks/{task.pk}/claim/")
    assert response.status_code == 409
    assert "already claimed by Rob Reviewer" in response.json()["detail"]


def test_unclaim_returns_it_to_the_queue_and_twice_is_409(api, review, reviewer):
    task = only_task(review)
    client = api(reviewer)
    client.post(f"/api/v1/tasks/{task.pk}/claim/")
    response = client.post(f"/api/v1/tasks/{task.pk}/unclaim/")
    assert response.status_code == 200
    assert response.json()["assignee"] is None and response.json()["status"] == "open"
    response = client.post(f"/api/v1/tasks/{task.pk}/unclaim/")
    assert response.status_code == 409
    assert response.json()["current_state"] == "review"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"to": "nobody"}, "No active user 'nobody'."),
        ({"to": "rob"}, "Choose someone else."),
        ({"to": "rita"}, "Choose someone other than the requester."),
        ({"to": "AnonymousUser"}, "No active user 'AnonymousUser'."),
        ({}, "This field is required."),
    ],
)
def test_delegate_with_bad_input_is_400(api, review, reviewer, requester, anonymous, body, message):
    task = only_task(review)
    response = api(reviewer).post(f"/api/v1/tasks/{task.pk}/delegate/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"to": [message]}
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_write_endpoints_are_throttled(api, review, reviewer, settings):
    settings.API_WRITE_RATE = "2/minute"
    task = only_task(review)
    client = api(reviewer)
    assert client.post(f"/api/v1/tasks/{task.pk}/claim/").status_code == 200
    assert client.post(f"/api/v1/tasks/{task.pk}/unclaim/").status_code == 200
    response = client.post(f"/api/v1/tasks/{task.pk}/claim/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled" and int(response["Retry-After"]) > 0
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    # Reads have their own budget.
    assert client.get("/api/v1/tasks/").status_code == 200


def test_delegating_a_decided_task_is_409(api, review, reviewer, reviewer2):
    task = only_task(review)
    client = api(reviewer)
    client.post(f"/api/v1/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, format="json")
    response = client.post(f"/api/v1/tasks/{task.pk}/delegate/", {"to": "mia"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_decided"


def test_a_retried_delegation_hands_the_task_over_once(api, review, reviewer, reviewer2):
    task = only_task(review)
    client = api(reviewer)
    url = f"/api/v1/tasks/{task.pk}/delegate/"
    first = client.post(url, {"to": "mia"}, format="json", HTTP_IDEMPOTENCY_KEY="hand-over")
    again = client.post(url, {"to": "mia"}, format="json", HTTP_IDEMPOTENCY_KEY="hand-over")
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Task.objects.filter(instance=review).count() == 2  # the original and one successor


def test_a_decision_whose_guard_runs_out_of_its_budget_is_409_naming_the_guard(
    api, requester, reviewer
):
    publish(guarded_flow())
    instance = instance_start(
        definition_key="guarded", context={"items": list(range(40))}, actor=requester, now=NOW
    )
    task = only_task(instance)
    response = api(reviewer).post(
        f"/api/v1/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert body["detail"].startswith(f"guard '{EXPENSIVE}' of review (APPROVE) failed: ")
    assert "evaluation budget exceeded" in body["detail"]
    assert body["current_state"] == "review"
    assert Task.objects.get(pk=task.pk).status == TaskStatus.OPEN
    assert not Decision.objects.exists()
