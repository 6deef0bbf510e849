"""What requesters and reviewers read on the pages: words, not the engine's terms."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import OutOfOffice
from approvals.models import WorkflowInstance
from approvals.services.errors import InvalidInput, NotAllowed
from approvals.services.instances import instance_start
from approvals.services.preferences import user_set_time_zone
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW, director_flow, multi_flow, publish, review_flow
from tests.approvals.views.conftest import snapshot, start
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def words_of(html: str) -> str:
    """The text of a page as a person reads it, the diagram's lines included."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def flow(db):
    return publish(director_flow(sla="P2D"))


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


def capped() -> dict[str, Any]:
    """APPROVE is allowed only under 5,000 (said in a description); REJECT always."""
    flow = review_flow()
    flow["states"]["review"]["on"]["APPROVE"] = [
        {"target": "approved", "guard": "amount < 5000", "description": "the amount is under 5,000"}
    ]
    return flow


def test_a_decision_no_guard_allows_is_not_offered(client: Client, requester, reviewer):
    publish(capped())
    instance = start(requester, amount=8000)
    task = instance.tasks.get()
    client.force_login(reviewer)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'value="APPROVE"' not in html and 'value="REJECT"' in html
    assert "Approve is not possible now: only when the amount is under 5,000." in html
    assert "no guard allows" not in html and "guard" not in html.split('id="decision"')[1][:3000]


def test_a_refused_decision_says_why_in_the_definitions_words(client: Client, requester, reviewer):
    publish(capped())
    instance = start(requester, amount=8000)
    task = instance.tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"}, follow=True)
    html = response.content.decode()
    assert "Approve is not possible now: only when the amount is under 5,000." in html
    assert "no guard allows" not in html
    assert snapshot() == before


def test_a_guard_without_description_is_refused_in_plain_words(client, requester, reviewer):
    flow = capped()
    del flow["states"]["review"]["on"]["APPROVE"][0]["description"]
    publish(flow)
    task = start(requester, amount=8000).tasks.get()
    client.force_login(reviewer)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "Approve is not possible now: only when the amount is under 5,000." in html


def test_an_outsider_cannot_decide_or_read_the_reasons(client: Client, requester, outsider):
    publish(capped())
    task = start(requester, amount=8000).tasks.get()
    client.force_login(outsider)
    before = snapshot()
    assert client.get(f"/tasks/{task.pk}/").status_code == 404
    assert client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"}).status_code == 404
    assert snapshot() == before


@pytest.fixture
def cover(db, reviewer):
    carl = UserFactory(username="carl", first_name="Carl", last_name="Cover")
    today = timezone.localdate()
    OutOfOffice.objects.create(
        user=reviewer, substitute=carl, starts_on=today, ends_on=today + timedelta(days=3)
    )
    return carl


def test_the_cover_sees_whom_they_cover_for(client: Client, requester, reviewer, reviewer2, cover):
    publish(review_flow())
    task = start(requester).tasks.get()
    client.force_login(cover)
    queue = client.get("/inbox/?tab=queue").content.decode()
    assert "covering for Rob Reviewer" in queue
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    assert "You are covering for Rob Reviewer" in html
    client.force_login(reviewer2)  # a manager in their own right
    assert "covering for" not in client.get("/inbox/?tab=queue").content.decode()
    assert "covering for" not in client.get(f"/tasks/{task.pk}/").content.decode()


def test_the_cover_of_an_assignee_sees_it_in_delegated(client: Client, requester, reviewer, cover):
    publish(review_flow())
    task = start(requester).tasks.get()
    task_claim(task_id=task.pk, actor=reviewer, now=NOW)
    client.force_login(cover)
    assert "covering for Rob Reviewer" in client.get("/inbox/?tab=delegated").content.decode()
    assert "You are covering for Rob Reviewer" in client.get(f"/tasks/{task.pk}/").content.decode()


def test_an_outsider_covering_for_nobody_sees_nothing(client: Client, requester, outsider):
    publish(review_flow())
    task = start(requester).tasks.get()
    client.force_login(outsider)
    assert client.get(f"/tasks/{task.pk}/").status_code == 404
    assert "covering for" not in client.get("/inbox/?tab=queue").content.decode()


FORM = {
    "type": "object",
    "required": ["title", "amount"],
    "properties": {
        "title": {"type": "string"},
        "amount": {"type": "number", "title": "Total amount"},
        "currency": {
            "type": "string",
            "title": "Currency",
            "oneOf": [{"const": "EUR", "title": "Euro"}, {"const": "USD", "title": "US dollar"}],
        },
        "level": {"type": "string", "enum": ["r", "w"], "x-enumNames": ["Read", "Write"]},
        "needed_by": {"type": "string", "format": "date", "title": "Needed by"},
        "revisions": {"type": "integer", "default": 0, "readOnly": True},
    },
}


@pytest.fixture
def typed(db):
    return publish({**review_flow(), "form": FORM})


def test_values_show_titles_amounts_and_dates(client: Client, typed, requester, reviewer):
    instance = start(requester, amount=12500.5, currency="EUR", level="w", needed_by="2026-12-24")
    client.force_login(reviewer)
    html = client.get(f"/tasks/{instance.tasks.get().pk}/").content.decode()
    fields = html.split("<h2>The request</h2>")[1].split("</section>")[0]
    assert "12,500.50 EUR" in fields
    assert ">Euro<" in fields and ">Write<" in fields and ">w<" not in fields
    assert "24 Dec 2026" in fields


def test_dates_use_one_format_in_the_users_time_zone(client: Client, review, requester):
    requester.time_zone = "Asia/Tokyo"
    requester.save()
    instance = start(requester)  # created at NOW: 09:00 UTC, 18:00 in Tokyo
    client.force_login(requester)
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    assert "2 Nov 2026, 18:00 JST" in html
    requester.time_zone = ""
    requester.save()
    html = client.get(f"/requests/{instance.pk}/").content.decode()
    assert "2 Nov 2026, 09:00 UTC" in html


def test_choosing_a_time_zone_on_the_profile(client: Client, requester, outsider):
    client.force_login(requester)
    response = client.post("/accounts/profile/time-zone/", {"time_zone": "Europe/Paris"})
    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.time_zone == "Europe/Paris"
    assert 'value="Europe/Paris" selected' in client.get("/accounts/profile/").content.decode()
    response = client.post(
        "/accounts/profile/time-zone/", {"time_zone": "Mars/Olympus"}, follow=True
    )
    assert "Choose a time zone from the list." in response.content.decode()
    requester.refresh_from_db()
    assert requester.time_zone == "Europe/Paris"
    assert client.get("/accounts/profile/time-zone/").status_code == 405
    client.logout()
    assert client.post("/accounts/profile/time-zone/", {"time_zone": "UTC"}).status_code == 302
    outsider.refresh_from_db()
    assert outsider.time_zone == ""


def test_the_time_zone_service_refuses_someone_else(requester, outsider):

    with pytest.raises(NotAllowed):
        user_set_time_zone(user_id=requester.pk, time_zone="UTC", actor=outsider)
    with pytest.raises(InvalidInput):
        user_set_time_zone(user_id=requester.pk, time_zone="Nowhere/City", actor=requester)
    requester.refresh_from_db()
    assert requester.time_zone == ""


def test_a_resubmission_shows_the_reviewer_what_changed(client: Client, typed, requester, reviewer):

    instance = start(requester, amount=12000, currency="EUR")
    task_decide(
        task_id=instance.tasks.get().pk,
        event="REQUEST_CHANGES",
        comment="Please get a cheaper quote.",
        actor=reviewer,
        now=NOW,
    )
    own = instance.tasks.get(status__in=["open", "claimed"])
    client.force_login(requester)
    html = client.get(f"/tasks/{own.pk}/").content.decode()
    card = html.split('id="decision"')[1]
    assert card.index("Please get a cheaper quote.") < card.index('id="decide-form"')
    assert "Rob Reviewer</strong> asked for changes" in card

    task_decide(
        task_id=own.pk,
        event="RESUBMIT",
        form={"title": "Laptop", "amount": 9000, "currency": "USD"},
        actor=requester,
        now=NOW,
    )
    review = instance.tasks.get(status__in=["open", "claimed"])
    client.force_login(reviewer)
    html = client.get(f"/tasks/{review.pk}/").content.decode()
    changes = html.split('id="resubmitted"')[1].split("</table>")[0]
    assert "Total amount" in changes and "12,000" in changes and "9,000" in changes
    assert "Euro" in changes and "US dollar" in changes
    assert "Laptop" not in changes  # unchanged fields are not listed


def test_quorum_progress_on_the_task_page(client: Client, requester):

    security = GroupFactory(name="security")
    sam = UserFactory(username="sam", first_name="Sam", last_name="Silva", groups=[security])
    tina = UserFactory(username="tina", first_name="Tina", last_name="Tran", groups=[security])
    publish(multi_flow({"quorum": 2}, ["security"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    first, second = instance.tasks.order_by("pk")
    client.force_login(tina)
    assert "No approvals yet; 2 needed." in client.get(f"/tasks/{second.pk}/").content.decode()
    task_decide(task_id=first.pk, event="APPROVE", actor=sam, now=NOW)
    assert "Sam Silva approved; 1 of 2." in client.get(f"/tasks/{second.pk}/").content.decode()
    client.force_login(requester)
    page = client.get(f"/requests/{instance.pk}/").content.decode()
    assert "Approval: Sam Silva approved; 1 of 2." in page


def test_the_request_form_offers_enum_titles(client: Client, typed, requester):
    client.force_login(requester)
    html = client.get("/requests/new/review/").content.decode()
    assert '<option value="EUR">Euro</option>' in html
    assert '<option value="w">Write</option>' in html
    response = client.post(
        "/requests/new/review/",
        {"title": "Desk", "amount": "10", "currency": "USD", "level": "w"},
    )
    assert response.status_code == 302
    instance = WorkflowInstance.objects.get()
    assert (instance.context["currency"], instance.context["level"]) == ("USD", "w")
    bad = client.post(
        "/requests/new/review/", {"title": "Desk", "amount": "10", "currency": "Euro"}
    )
    assert bad.status_code == 400 and WorkflowInstance.objects.count() == 1


def test_everyone_progress_on_the_task_page(client: Client, requester):
    board = GroupFactory(name="board")
    sam = UserFactory(username="sam", first_name="Sam", last_name="Silva", groups=[board])
    tina = UserFactory(username="tina", first_name="Tina", last_name="Tran", groups=[board])
    publish(multi_flow("everyone", ["board"]))
    instance = instance_start(definition_key="multi", context={}, actor=requester, now=NOW)
    sams, tinas = instance.tasks.order_by("assignee__username")
    client.force_login(tina)
    assert "No approvals yet; 2 needed." in client.get(f"/tasks/{tinas.pk}/").content.decode()
    assert client.get(f"/tasks/{sams.pk}/").status_code == 200  # she sees it, as a colleague
    task_decide(task_id=sams.pk, event="APPROVE", actor=sam, now=NOW)
    assert "Sam Silva approved; 1 of 2." in client.get(f"/tasks/{tinas.pk}/").content.decode()
    client.force_login(tina)
    inbox = client.get("/inbox/?tab=mine").content.decode()
    assert f"/tasks/{tinas.pk}/" in inbox
