"""Deciding from an e-mail: the links come from messages a real SMTP server received; following
one only shows a page, its POST decides once, for the person it was sent to."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group

from approvals.integrations.email.models import OutgoingEmail
from approvals.models import AuditEvent, Decision, TaskStatus
from approvals.services.task_work import task_decide
from tests.approvals.integrations.email.mail_flows import NOW, send_all

pytestmark = pytest.mark.django_db

LATER = NOW + timedelta(hours=1)


@pytest.fixture
def at_later():
    with time_machine.travel(LATER, tick=False):
        yield


@pytest.fixture
def mailed(smtp, desks, at_later):
    send_all()
    return smtp


def link(smtp, user, label: str) -> str:
    """The path of a decision link in the text part of the e-mail `user` received."""
    (got,) = smtp.to(user.email)
    match = re.search(rf"^  {label}: https://signoff\.example\.com(/\S+)\r?$", got.text, re.M)
    assert match, got.text
    return match.group(1)


def state_of(desks) -> tuple:
    task = desks.tasks.get()
    return (task.status, Decision.objects.count(), AuditEvent.objects.count())


def test_following_a_link_shows_a_page_and_changes_nothing(mailed, desks, reviewer, client):
    before = state_of(desks)
    client.force_login(reviewer)
    page = client.get(link(mailed, reviewer, "Approve"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Approve “Standing desks”?" in body
    assert "15,000 EUR" in body and "Rita Requester" in body
    assert 'method="post"' in body and 'id="confirm-decision"' in body
    assert state_of(desks) == before
    assert OutgoingEmail.objects.get(recipient=reviewer).link_used_at is None
    # A prefetcher's HEAD is no more than a GET.
    assert client.head(link(mailed, reviewer, "Approve")).status_code == 405
    assert state_of(desks) == before


def test_the_post_decides_through_the_service_once(mailed, desks, reviewer, client):
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Approve")
    response = client.post(url, {"comment": "Fine by me"})
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{desks.pk}/"
    task = desks.tasks.get()
    assert task.status == TaskStatus.DONE
    decision = Decision.objects.get()
    assert (decision.actor, decision.event, decision.comment) == (reviewer, "APPROVE", "Fine by me")
    event = AuditEvent.objects.filter(task=task, event="task.decided").get()
    assert event.channel == "email"
    assert OutgoingEmail.objects.get(recipient=reviewer).link_used_at == LATER

    # Used: the same link, or another of the same e-mail, does nothing again.
    for again in (url, link(mailed, reviewer, "Reject")):
        page = client.get(again)
        assert page.status_code == 409
        assert "already used" in page.content.decode()
        assert client.post(again, {"comment": "twice"}).status_code == 409
    assert Decision.objects.count() == 1


def test_a_reject_needs_a_reason_and_a_refusal_leaves_the_link_usable(
    mailed, desks, reviewer, client
):
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Reject")
    page = client.post(url, {"comment": "  "})
    assert page.status_code == 400
    assert "comment" in page.content.decode().lower()
    assert OutgoingEmail.objects.get(recipient=reviewer).link_used_at is None
    assert desks.tasks.get().status == TaskStatus.OPEN
    assert client.post(url, {"comment": "Too expensive"}).status_code == 302
    desks.refresh_from_db()
    assert desks.status == "rejected"


def test_signed_out_the_link_asks_to_sign_in_first(mailed, reviewer, client):
    url = link(mailed, reviewer, "Approve")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert client.post(url).status_code == 302
    assert Decision.objects.count() == 0


def test_another_signed_in_user_is_refused_and_told_nothing(
    mailed, desks, reviewer, reviewer2, outsider, client
):
    url = link(mailed, reviewer, "Approve")
    for other in (reviewer2, outsider):
        client.force_login(other)
        page = client.get(url)
        assert page.status_code == 403
        body = page.content.decode()
        assert "sent to someone else" in body
        assert "Standing desks" not in body
        assert client.post(url, {"comment": "mine now"}).status_code == 403
    assert state_of(desks)[:2] == (TaskStatus.OPEN, 0)


def test_a_link_for_a_task_already_decided_says_who(mailed, desks, reviewer, reviewer2, client):
    task_decide(task_id=desks.tasks.get().pk, event="APPROVE", actor=reviewer2, now=LATER)
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Reject")
    page = client.get(url)
    assert page.status_code == 409
    body = page.content.decode()
    assert "already decided by Mia Manager" in body
    assert client.post(url, {"comment": "no"}).status_code == 409
    assert Decision.objects.count() == 1


def test_a_link_expires(mailed, desks, reviewer, client, settings):
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Approve")
    with time_machine.travel(NOW + timedelta(hours=71, minutes=59), tick=False):
        assert client.get(url).status_code == 200
    with time_machine.travel(NOW + timedelta(hours=72, seconds=1), tick=False):
        page = client.get(url)
        assert page.status_code == 410
        assert "expired" in page.content.decode()
        assert client.post(url).status_code == 410
    assert Decision.objects.count() == 0


def test_the_expiry_is_a_setting(smtp, desks, reviewer, client, settings, at_later):
    settings.EMAIL_LINK_HOURS = 2
    send_all()
    client.force_login(reviewer)
    url = link(smtp, reviewer, "Approve")
    with time_machine.travel(NOW + timedelta(hours=2, seconds=1), tick=False):
        assert client.get(url).status_code == 410


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # the signature
        lambda token: token[:-10],  # cut
        lambda token: "x" + token[1:],  # the payload
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_link_is_not_valid(mailed, desks, reviewer, client, tamper):
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Approve")
    token = url.removeprefix("/email/decide/").removesuffix("/")
    bad = f"/email/decide/{tamper(token)}/"
    page = client.get(bad)
    assert page.status_code == 404
    assert "not valid" in page.content.decode()
    assert client.post(bad).status_code == 404
    assert Decision.objects.count() == 0


def test_someone_who_left_the_role_cannot_decide_from_an_old_e_mail(
    mailed, desks, reviewer, client
):
    Group.objects.get(name="manager").user_set.remove(reviewer)
    client.force_login(reviewer)
    url = link(mailed, reviewer, "Approve")
    page = client.get(url)
    assert page.status_code == 404
    assert "not valid any more" in page.content.decode()
    assert client.post(url).status_code == 404
    assert Decision.objects.count() == 0


def test_mails_without_a_task_to_decide_carry_no_links(mailed, desks, reviewer, requester):
    task_decide(task_id=desks.tasks.get().pk, event="APPROVE", actor=reviewer, now=LATER)
    send_all(LATER)
    (to_rita,) = mailed.to(requester.email)
    assert "/email/decide/" not in to_rita.text
