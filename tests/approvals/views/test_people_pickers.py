"""Every people picker and the inbox's Requester filter take a person as they are on screen:
by name, or by the username the suggestions submit; the Step filter offers the steps."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import OutOfOffice
from approvals.models import Task
from tests.approvals.flows import publish, routed_flow
from tests.approvals.views.conftest import snapshot, start
from tests.approvals.views.test_inbox import rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("to", ["mia", "Mia Manager", "Mia", "mia manager"])
def test_delegate_by_name(client: Client, review, requester, reviewer, reviewer2, to):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": to})
    assert response.status_code == 302
    assert task.successors.get().assignee == reviewer2


def test_a_name_several_people_have_is_refused_naming_them(
    client: Client, review, requester, reviewer, reviewer2
):
    UserFactory(username="max", first_name="Max", last_name="Manager")
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    before = snapshot()
    response = client.post(f"/tasks/{task.pk}/delegate/", {"to": "Manager"})
    assert response.status_code == 400
    assert (
        "Several people match &#x27;Manager&#x27;: Max Manager (max), Mia Manager (mia)."
        in response.content.decode()
    )
    assert snapshot() == before


def test_an_outsider_cannot_delegate_by_name_either(client: Client, review, requester, outsider):
    task = start(requester).tasks.get()
    client.force_login(outsider)
    before = snapshot()
    assert client.post(f"/tasks/{task.pk}/delegate/", {"to": "Rob Reviewer"}).status_code == 404
    assert snapshot() == before


def test_the_person_boxes_search_people(client: Client, review, requester, reviewer):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    html = client.get(f"/tasks/{task.pk}/").content.decode()
    box = re.search(r'<input type="text" name="to"[^>]*>', html).group(0)
    assert 'data-people-search="/people/"' in box and 'list="delegate_to-people"' in box
    assert '<datalist id="delegate_to-people"></datalist>' in html
    profile = client.get("/accounts/profile/").content.decode()
    box = re.search(r'<input type="text" name="substitute"[^>]*>', profile).group(0)
    assert 'data-people-search="/people/"' in box and 'list="id_substitute-people"' in box
    assert "js/people.js" in profile


def test_cover_is_chosen_by_name(client: Client, reviewer, outsider):
    client.force_login(reviewer)
    response = client.post(
        "/accounts/profile/",
        {"substitute": "Otto Outsider", "starts_on": "2099-01-05", "ends_on": "2099-01-09"},
    )
    assert response.status_code == 302
    assert OutOfOffice.objects.get().substitute == outsider


@pytest.mark.parametrize("requester_text", ["rita", "RITA", "Rita Requester", "requester"])
def test_the_requester_filter_takes_a_name(
    client: Client, review, requester, reviewer, requester_text
):
    mine = start(requester).tasks.get().pk
    other = UserFactory(username="ria", first_name="Ria", last_name="Other")
    start(other)
    client.force_login(reviewer)
    assert rows(client, f"tab=queue&requester={requester_text}") == [str(mine)]


def test_a_requester_nobody_or_several_are_called_is_said(
    client: Client, review, requester, reviewer
):
    UserFactory(username="rina", first_name="Rina", last_name="Requester")
    start(requester)
    client.force_login(reviewer)
    html = client.get("/inbox/?tab=queue&requester=Requester").content.decode()
    assert 'class="inbox-row"' not in html
    assert "Requester: Several people match &#x27;Requester&#x27;" in html
    html = client.get("/inbox/?tab=queue&requester=Zed").content.decode()
    assert "Requester: No active user &#x27;Zed&#x27;" in html and 'class="inbox-row"' not in html


def test_an_outsider_filtering_by_requester_sees_nothing(
    client: Client, review, requester, outsider
):
    start(requester)
    client.force_login(outsider)
    for tab in ("mine", "queue", "delegated", "overdue", "done"):
        assert rows(client, f"tab={tab}&requester=Rita Requester") == []


def test_the_step_filter_lists_the_workflows_steps(client: Client, review, requester, reviewer):
    publish(routed_flow())
    client.force_login(reviewer)
    html = client.get("/inbox/?workflow=routed").content.decode()
    step = re.search(r'<label id="filter-step".*?</label>', html, re.S).group(0)
    assert re.findall(r'<option value="(\w*)"', step) == ["", "manager", "finance"]
    html = client.get("/inbox/").content.decode()
    step = re.search(r'<label id="filter-step".*?</label>', html, re.S).group(0)
    assert re.findall(r'<option value="(\w*)"', step) == [
        "",
        "review",
        "changes",
        "manager",
        "finance",
    ]


def test_the_step_filter_filters_and_keeps_a_step_from_an_old_link(
    client: Client, review, requester, reviewer
):
    task = start(requester).tasks.get()
    client.force_login(reviewer)
    assert rows(client, "tab=queue&state=review") == [str(task.pk)]
    html = client.get("/inbox/?tab=queue&state=manager_review").content.decode()
    assert '<option value="manager_review" selected>manager_review</option>' in html
    assert 'class="inbox-row"' not in html
    assert Task.objects.count() == 1


def test_filters_fetched_by_htmx_bring_the_steps_of_the_chosen_workflow(
    client: Client, review, requester, reviewer
):
    publish(routed_flow())
    client.force_login(reviewer)
    html = client.get("/inbox/?workflow=routed", headers={"HX-Request": "true"}).content.decode()
    assert '<label id="filter-step" hx-swap-oob="true">' in html
    assert '<label id="filter-sort" hx-swap-oob="true">' in html
