"""The task page: what it shows, who may act, and every POST refused to the wrong person."""

from __future__ import annotations

import pytest
from django.test import Client

from approvals.models import AuditEvent, Decision, TaskStatus
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW
from tests.approvals.views.conftest import snapshot, start

pytestmark = pytest.mark.django_db


def test_reviewer_sees_the_request_history_diagram_and_one_button_per_event(
    client: Client, review, requester, reviewer
):
    instance = start(requester, title="Standing desk", amount=640)
    task = instance.tasks.get()
    client.force_login(reviewer)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Standing desk" in html
    assert '<dd data-field="amount">640</dd>' in html  # rendered from the form, not raw JSON
    assert "submitted the request" in html and "A task for a manager was opened" in html
    assert "<svg" in html
    for event in ("APPROVE", "REQUEST_CHANGES", "REJECT"):
        assert f'value="{event}"' in html
    assert ">Approve<" in html and ">Request changes<" in html and ">Reject<" in html
    assert 'id="claim"' in html


def test_outsider_gets_404_for_the_page_and_every_post_and_nothing_changes(
    client: Client, review, requester, outsider
):
    task = start(requester).tasks.get()
    client.force_login(outsider)
    before = snapshot()
    assert client.get(f"/tasks/{task.pk}/").status_code == 404
    for action, data in [
        ("claim", {}),
        ("unclaim", {}),
        ("decide", {"decision": "APPROVE"}),
        ("delegate", {"to": "otto"}),
    ]:
        assert client.post(f"/tasks/{task.pk}/{action}/", data).status_code == 404
    assert snapshot() == before


def test_anonymous_is_sent_to_login(client: Client, review, requester):
    task = start(requester).tasks.get()
    response = client.get(f"/tasks/{task.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response.headers["Location"]
    assert client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"}).status_code == 302


def test_requester_sees_their_request_but_may_not_decide_it(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(requester)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Waiting on someone else" in html and 'value="APPROVE"' not in html
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})
    assert response.status_code == 403
    assert "cannot decide on your own request" in response.content.decode()
    assert client.post(f"/tasks/{task.pk}/claim/").status_code == 403
    assert snapshot() == before


def test_get_never_changes_state(client: Client, review, requester, reviewer):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    for action in ("claim", "unclaim", "decide", "delegate"):
        assert client.get(f"/tasks/{task.pk}/{action}/").status_code == 405
    assert snapshot() == before


def test_posts_need_the_csrf_token(review, requester, reviewer):
    task = start(requester).tasks.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    before = snapshot()
    assert client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"}).status_code == 403
    assert snapshot() == before


def test_approve_moves_the_request_and_returns_to_the_inbox(
    client: Client, review, requester, reviewer
):
    instance = start(requester)
    task = instance.tasks.get()
    client.force_login(reviewer)
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE", "comment": "ok"})
    assert response.status_code == 302 and response.headers["Location"] == "/inbox/"
    instance.refresh_from_db()
    assert instance.state == "approved"
    assert Decision.objects.get().actor == reviewer


def test_reject_without_a_comment_is_refused_and_nothing_changes(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "REJECT", "comment": " "})
    assert response.status_code == 400
    assert "Say why (required)." in response.content.decode()
    assert snapshot() == before


def test_an_event_the_state_does_not_accept_is_a_form_error(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "SHIP_IT"})
    assert response.status_code == 400
    assert "Choose one of: APPROVE, REJECT, REQUEST_CHANGES." in response.content.decode()
    assert snapshot() == before


def test_the_second_reviewer_is_told_who_decided_first(
    client: Client, review, requester, reviewer, reviewer2
):
    task = start(requester).tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    client.force_login(reviewer2)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Decided by <strong>Rob Reviewer</strong>" in html
    before = snapshot()
    response = client.post(
        f"/tasks/{task.pk}/decide/", {"decision": "REJECT", "comment": "no"}, follow=True
    )
    assert "Already decided by Rob Reviewer" in response.content.decode()
    assert snapshot() == before


def test_claim_and_give_back(client: Client, review, requester, reviewer, reviewer2):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    client.post(f"/tasks/{task.pk}/claim/")
    task.refresh_from_db()
    assert task.assignee == reviewer and task.status == TaskStatus.CLAIMED

    client.force_login(reviewer2)
    response = client.post(f"/tasks/{task.pk}/claim/", follow=True)
    assert "Already claimed by Rob Reviewer" in response.content.decode()
    assert client.post(f"/tasks/{task.pk}/unclaim/").status_code == 403

    client.force_login(reviewer)
    client.post(f"/tasks/{task.pk}/unclaim/")
    task.refresh_from_db()
    assert task.assignee is None and task.status == TaskStatus.OPEN


def test_delegate_to_a_colleague(client: Client, review, requester, reviewer, reviewer2):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": "mia", "comment": "yours"})
    assert response.status_code == 302
    successor = task.successors.get()
    assert successor.assignee == reviewer2 and successor.delegated_by == reviewer
    assert AuditEvent.objects.filter(event="task.delegated", data__to="mia").exists()


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("rob", "you cannot delegate to yourself"),
        ("rita", "Choose someone other than the requester."),
        ("nobody", "No active user &#x27;nobody&#x27;."),
        ("", "This field is required."),
    ],
)
def test_delegating_to_the_wrong_person_is_refused(
    client: Client, review, requester, reviewer, to, message
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": to})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html or message.capitalize() in html or "Choose someone else." in html
    assert snapshot() == before


def test_requester_edits_and_resubmits_after_changes_were_requested(
    client: Client, review, requester, reviewer
):
    instance = start(requester, title="Laptop", amount=1200)
    task = instance.tasks.get()
    task_decide(
        task_id=task.pk, event="REQUEST_CHANGES", comment="Cheaper model?", actor=reviewer, now=NOW
    )
    own = instance.tasks.get(status=TaskStatus.CLAIMED)
    client.force_login(requester)
    html = client.get(f"/tasks/{own.pk}/").content.decode()
    assert 'name="amount"' in html and "Cheaper model?" in html
    assert 'name="revisions"' not in html  # counted by the workflow, never typed in

    before = snapshot()
    bad = client.post(
        f"/tasks/{own.pk}/decide/", {"decision": "RESUBMIT", "title": "Laptop", "amount": "-5"}
    )
    assert bad.status_code == 400 and snapshot() == before

    response = client.post(
        f"/tasks/{own.pk}/decide/", {"decision": "RESUBMIT", "title": "Laptop", "amount": "900"}
    )
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.state == "review"
    assert instance.context["amount"] == 900 and instance.context["revisions"] == 1
    event = AuditEvent.objects.get(event="task.decided", data__decision="RESUBMIT")
    assert event.data["changed"] == {"amount": [1200, 900]}


def test_nobody_can_delegate_to_guardians_anonymous_user(
    client: Client, review, requester, reviewer, anonymous
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": anonymous.username})
    assert response.status_code == 400
    assert "No active user &#x27;AnonymousUser&#x27;." in response.content.decode()
    assert snapshot() == before
    found = client.get("/people/?q=anonym").json()["results"]
    assert found == []


def test_people_search_suggests_active_colleagues_but_not_me(
    client: Client, review, reviewer, reviewer2, outsider
):
    client.force_login(reviewer)
    names = [p["username"] for p in client.get("/people/?q=m").json()["results"]]
    assert "mia" in names and "rob" not in names
    outsider.is_active = False
    outsider.save()
    assert client.get("/people/?q=otto").json()["results"] == []
    client.logout()
    assert client.get("/people/?q=m").status_code == 302


def test_the_claim_from_the_inbox_keyboard_uses_the_same_post(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    client.force_login(reviewer)
    html = client.get("/inbox/").content.decode()
    assert f'data-task="{task.pk}"' in html and "data-claim" not in html
