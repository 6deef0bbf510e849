"""Parent and sub-requests link both ways, in the API and on the request page, as far as the
viewer may see each."""

from __future__ import annotations

import pytest

from approvals.history import timeline
from approvals.models import OutboxMessage
from approvals.notify.facts import facts_for
from approvals.notify.push import events_for, instance_group
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW
from tests.approvals.subflows.flows import child_of, deliver_all, open_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(buyer, clerk, reviewer):
    """A purchase whose vendor onboarding the clerk approved: now at the manager's review."""
    parent = instance_start(
        definition_key="purchase",
        context={"vendor_name": "Acme", "amount": 120},
        actor=buyer,
        now=NOW,
    )
    deliver_all()
    child = child_of(parent)
    task_decide(task_id=open_task(child).pk, event="APPROVE", actor=clerk, now=NOW)
    deliver_all()
    return parent, child


def test_the_api_shows_parent_and_children_to_the_requester(api, buyer, family):
    parent, child = family
    body = api(buyer).get(f"/api/v1/instances/{parent.pk}/").json()
    assert (body["parent"], body["children"]) == (None, [child.pk])
    body = api(buyer).get(f"/api/v1/instances/{child.pk}/").json()
    assert (body["parent"], body["children"]) == (parent.pk, [])


def test_seeing_the_parent_does_not_reveal_the_child(api, reviewer, clerk, outsider, family):
    parent, child = family
    # The manager may see the parent (its open task is theirs), not the child.
    body = api(reviewer).get(f"/api/v1/instances/{parent.pk}/").json()
    assert body["children"] == []
    assert api(reviewer).get(f"/api/v1/instances/{child.pk}/").status_code == 404
    # The clerk took part in the child, not in the parent.
    assert api(clerk).get(f"/api/v1/instances/{child.pk}/").json()["parent"] is None
    assert api(outsider).get(f"/api/v1/instances/{parent.pk}/").status_code == 404
    assert api(outsider).get(f"/api/v1/instances/{child.pk}/").status_code == 404


def test_the_request_pages_link_both_ways(client, buyer, reviewer, outsider, family):
    parent, child = family
    client.force_login(buyer)
    page = client.get(f"/requests/{parent.pk}/").content.decode()
    assert 'id="sub-requests"' in page and f'href="/requests/{child.pk}/"' in page
    assert "Completed" in page.split('id="sub-requests"')[1]
    page = client.get(f"/requests/{child.pk}/").content.decode()
    assert "Part of" in page and f'href="/requests/{parent.pk}/">#{parent.pk}</a>' in page

    client.force_login(reviewer)
    page = client.get(f"/requests/{parent.pk}/").content.decode()
    assert 'id="sub-requests"' not in page and f"/requests/{child.pk}/" not in page
    client.force_login(outsider)
    assert client.get(f"/requests/{parent.pk}/").status_code == 404
    assert client.get(f"/requests/{child.pk}/").status_code == 404


def test_the_histories_say_what_the_other_request_did(buyer, family):
    parent, child = family
    texts = [entry.text for entry in timeline(parent)]
    assert f"Started sub-request #{child.pk} (vendor-onboarding version 1)" in texts
    assert f"Sub-request #{child.pk} ended: completed" in texts
    assert timeline(child)[0].text == f"Started by a step of request #{parent.pk}"


def test_open_parent_pages_hear_of_a_child_started_and_ended(buyer, family):
    parent, _ = family
    messages = list(
        OutboxMessage.objects.filter(
            instance=parent, topic__in=("subflow.child_started", "subflow.child_ended")
        ).order_by("pk")
    )
    events = events_for(messages, facts_for(messages, with_members=False))
    assert [event["topic"] for _, event in events] == [
        "subflow.child_started",
        "subflow.child_ended",
    ]
    for groups, event in events:
        assert event["instance"] == parent.pk and instance_group(parent.pk) in groups
