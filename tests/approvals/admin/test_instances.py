"""The instances admin: an operator cancels a request and reassigns its task."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import InstanceStatus, TaskStatus
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db


def test_operator_cancels_and_reassigns_from_the_instance_page(
    staff_client, requester, reviewer, outsider
):
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    page = staff_client.get(reverse("admin:approvals_workflowinstance_change", args=[instance.pk]))
    assert b'id="timeline"' in page.content and b"instance.started" in page.content

    staff_client.post(
        reverse("admin:approvals_task_reassign", args=[instance.pk, task.pk]),
        {f"t{task.pk}-to": "Rob Reviewer"},
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert instance.tasks.get(status=TaskStatus.CLAIMED).assignee == reviewer

    outsider_client = Client()
    outsider_client.force_login(outsider)
    refused = outsider_client.post(
        reverse("admin:approvals_instance_cancel", args=[instance.pk]), {"reason": "x"}
    )
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    staff_client.post(
        reverse("admin:approvals_instance_cancel", args=[instance.pk]), {"reason": "duplicate"}
    )
    instance.refresh_from_db()
    assert instance.status == InstanceStatus.CANCELLED


def test_reassign_offers_people_who_may_act_and_refuses_the_others(
    staff_client, requester, reviewer, anonymous
):
    publish(review_flow())  # forbid_requester: the requester may not decide their own request
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    page = staff_client.get(reverse("admin:approvals_workflowinstance_change", args=[instance.pk]))
    html = page.content.decode()
    assert f'name="t{task.pk}-to"' in html and 'data-people-search="/people/"' in html
    assert "js/people.js" in html
    url = reverse("admin:approvals_task_reassign", args=[instance.pk, task.pk])
    for refused, message in (
        (anonymous.username, "No active user &#x27;AnonymousUser&#x27;."),
        ("Rita Requester", "Choose someone who may act on this task."),
        ("rita", "Choose someone who may act on this task."),
        ("nobody", "No active user &#x27;nobody&#x27;."),
    ):
        response = staff_client.post(url, {f"t{task.pk}-to": refused}, follow=True)
        assert message in response.content.decode()
        task.refresh_from_db()
        assert task.status == TaskStatus.OPEN
    staff_client.post(url, {f"t{task.pk}-to": "Rob"})  # his first name: he is the only Rob
    assert instance.tasks.get(status=TaskStatus.CLAIMED).assignee == reviewer


class _FormNesting(HTMLParser):
    """The actions of the <form>s a page opens inside another one (which a browser drops)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.nested: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            if self.depth:
                self.nested.append(dict(attrs).get("action") or "")
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.depth = max(0, self.depth - 1)


def nested_forms(html: str) -> list[str]:
    parser = _FormNesting()
    parser.feed(html)
    return parser.nested


def test_the_operations_are_not_nested_in_the_change_form(staff_client, requester):
    """A nested <form> is dropped by the browser: its button then posted the read-only change
    form (a bare 403) instead of reassigning."""
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    page = staff_client.get(reverse("admin:approvals_workflowinstance_change", args=[instance.pk]))
    html = page.content.decode()
    assert 'id="reassign-' in html and 'id="cancel-instance"' in html
    assert nested_forms(html) == []


def test_a_refused_reassignment_is_explained_in_a_message(client, requester, reviewer):
    """Staff who may see requests but not reassign tasks are told why; nothing changes."""
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    clerk = UserFactory(username="cleo", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_workflowinstance"))
    client.force_login(clerk)
    response = client.post(
        reverse("admin:approvals_task_reassign", args=[instance.pk, task.pk]),
        {f"t{task.pk}-to": "Rob Reviewer"},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == ["you may not reassign tasks"]
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.assignee is None


def test_reassign_left_empty_sends_the_task_back_to_its_roles_queue(
    staff_client, requester, reviewer
):
    publish(review_flow())
    instance = instance_start(
        definition_key="review", context={"title": "a", "amount": 1}, actor=requester, now=NOW
    )
    task = instance.tasks.get()
    url = reverse("admin:approvals_task_reassign", args=[instance.pk, task.pk])
    staff_client.post(url, {f"t{task.pk}-to": "rob"})
    claimed = instance.tasks.get(status=TaskStatus.CLAIMED)
    response = staff_client.post(
        reverse("admin:approvals_task_reassign", args=[instance.pk, claimed.pk]),
        {f"t{claimed.pk}-to": ""},
        follow=True,
    )
    assert "Task reassigned to its roles queue." in response.content.decode()
    back = instance.tasks.get(status=TaskStatus.OPEN)
    assert back.assignee is None and back.candidate_groups.filter(name="manager").exists()
