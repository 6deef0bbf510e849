"""Digests, under time-machine, across the nights the clocks change: one message per person
and period, grouped by workflow, oldest first; never empty, never twice."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.models import NotificationPreference
from approvals.integrations.email.digests import email_digests_gather
from approvals.integrations.email.models import EmailStatus, OutgoingEmail
from approvals.integrations.email.services import EMAILS, LEASE, email_messages_send
from approvals.integrations.email.tasks import email_digests
from approvals.outbox.sweep import outbox_sweep
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import publish
from tests.approvals.integrations.email.mail_flows import desk_flow

pytestmark = pytest.mark.django_db

# Saturday evening in Paris, the night the clocks go back (25 Oct 2026, 03:00 CEST → 02:00 CET).
SATURDAY = datetime(2026, 10, 24, 16, 0, tzinfo=UTC)
# 08:00 CET on Sunday.
PARIS_DIGEST = datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


@pytest.fixture
def flows():
    publish(desk_flow())
    purchase = copy.deepcopy(desk_flow())
    purchase["id"], purchase["title"] = "purchase", "Purchase"
    publish(purchase)


def ask(requester, key: str, title: str, now: datetime):
    with time_machine.travel(now, tick=False):
        return instance_start(
            definition_key=key,
            context={"title": title, "amount": 100, "currency": "EUR"},
            title=title,
            actor=requester,
            now=now,
        )


@pytest.fixture
def rob_daily(reviewer):
    reviewer.time_zone = "Europe/Paris"
    reviewer.save()
    for kind in ("task_new", "reminder"):
        NotificationPreference.objects.create(user=reviewer, kind=kind, delivery="daily")
    return reviewer


def beat(now: datetime) -> int:
    """What beat's digest task does at `now` on the clock."""
    with time_machine.travel(now, tick=False):
        return email_digests()


def test_a_daily_digest_goes_once_at_eight_on_the_reader_s_clock_after_the_change(
    smtp, flows, requester, rob_daily
):
    ask(requester, "review", "Chairs", SATURDAY)
    ask(requester, "purchase", "Laptops", SATURDAY + timedelta(minutes=5))
    ask(requester, "review", "Desks", SATURDAY + timedelta(minutes=10))
    held = OutgoingEmail.objects.filter(recipient=rob_daily)
    assert {(h.status, h.next_attempt_at) for h in held} == {("held", PARIS_DIGEST)}

    assert beat(PARIS_DIGEST - timedelta(minutes=1)) == 0
    assert beat(PARIS_DIGEST) == 1
    assert beat(PARIS_DIGEST) == 0  # beat twice: still one
    assert beat(PARIS_DIGEST + timedelta(minutes=1)) == 0

    (digest,) = OutgoingEmail.objects.filter(kind="digest")
    assert digest.digest_key == f"{rob_daily.pk}:{PARIS_DIGEST.isoformat()}"
    assert set(digest.items.values_list("status", flat=True)) == {"digested"}
    assert digest.items.count() == 3

    email_messages_send(ids=[digest.pk], now=PARIS_DIGEST)
    (got,) = smtp.to(rob_daily.email)
    assert got.message["Subject"].strip() == "[Signoff] Digest: 3 tasks waiting"
    text = got.text
    # Grouped by workflow, oldest first, with due dates in Rob's zone.
    purchase, review = text.index("Purchase\r\n"), text.index("Review\r\n")
    assert purchase < review
    assert text.index("Chairs") < text.index("Desks")
    assert "due 26 Oct 2026, 17:00 CET" in text  # two days after 16:00 UTC Saturday
    assert len(re.findall(r"https://signoff\.example\.com/tasks/\d+/", text)) == 3
    assert "Chairs" in got.html and "<img" not in got.html
    # Nothing of it was sent at once.
    assert len(smtp.received) == 1 + len(smtp.to("mia@example.com"))


def test_what_happened_to_my_requests_in_new_york_across_the_change(
    smtp, flows, requester, reviewer
):
    requester.time_zone = "America/New_York"
    requester.save()
    for kind in ("decision", "completed"):
        NotificationPreference.objects.create(user=requester, kind=kind, delivery="daily")
    # Saturday 31 Oct, 20:00 EDT; the clocks go back that night.
    evening = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    instance = ask(requester, "review", "Monitors", evening)
    with time_machine.travel(evening + timedelta(hours=1), tick=False):
        task_decide(
            task_id=instance.tasks.get().pk,
            event="APPROVE",
            actor=reviewer,
            now=evening + timedelta(hours=1),
        )
    # 08:00 EST on Sunday 1 Nov is 13:00 UTC (it would be 12:00 UTC a day earlier).
    due = datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert OutgoingEmail.objects.get(recipient=requester).next_attempt_at == due
    assert beat(due - timedelta(hours=1)) == 0
    assert beat(due) == 1
    digest = OutgoingEmail.objects.get(kind="digest")
    email_messages_send(ids=[digest.pk], now=due)
    (got,) = smtp.to(requester.email)
    assert got.message["Subject"].strip() == "[Signoff] Digest: 1 update on your requests"
    assert "Your requests" in got.text
    # When it happened, on her clock (before the change).
    assert "Rob Reviewer approved" in got.text and "31 Oct 2026, 21:00 EDT" in got.text
    assert f"https://signoff.example.com/requests/{instance.pk}/" in got.text


def test_an_empty_digest_is_not_sent(smtp, flows, requester, rob_daily, reviewer2):
    instance = ask(requester, "review", "Chairs", SATURDAY)
    # Mia decides before Rob's digest: nothing is left waiting for him.
    with time_machine.travel(SATURDAY + timedelta(hours=1), tick=False):
        task_decide(
            task_id=instance.tasks.get().pk,
            event="APPROVE",
            actor=reviewer2,
            now=SATURDAY + timedelta(hours=1),
        )
    assert beat(PARIS_DIGEST) == 0
    assert not OutgoingEmail.objects.filter(kind="digest").exists()
    assert OutgoingEmail.objects.get(recipient=rob_daily).status == EmailStatus.SKIPPED
    assert smtp.to(rob_daily.email) == []


def test_a_worker_killed_while_sending_a_digest_sends_it_once(smtp, flows, requester, rob_daily):
    ask(requester, "review", "Chairs", SATURDAY)
    (digest_id,) = email_digests_gather(now=PARIS_DIGEST)
    # A worker takes it and dies before the server accepted anything.
    assert EMAILS.claim(digest_id, now=PARIS_DIGEST)
    # Beat runs again: no second digest for the period.
    assert email_digests_gather(now=PARIS_DIGEST + timedelta(minutes=1)) == []
    # The sweep leaves it while the dead worker's lease runs...
    assert EMAILS.due(now=PARIS_DIGEST + LEASE - timedelta(seconds=1)) == []
    # ...then hands that same row out again, and it is sent once.
    later = PARIS_DIGEST + LEASE + timedelta(seconds=1)
    assert EMAILS.due(now=later) == [(digest_id, 2)]
    email_messages_send(ids=[digest_id], now=later)
    assert email_messages_send(ids=[digest_id], now=later) == {}
    assert outbox_sweep(now=later + LEASE)["email"] == 0
    assert len(smtp.to(rob_daily.email)) == 1
    assert OutgoingEmail.objects.filter(kind="digest").count() == 1


def test_hourly_digests_go_on_the_hour_through_the_repeated_hour(smtp, flows, requester, reviewer):
    reviewer.time_zone = "Europe/Paris"
    reviewer.save()
    NotificationPreference.objects.create(user=reviewer, kind="task_new", delivery="hourly")
    # 02:20 CEST, then 02:20 CET an hour later: two different hours, two digests.
    first = datetime(2026, 10, 25, 0, 20, tzinfo=UTC)
    ask(requester, "review", "Chairs", first)
    ask(requester, "purchase", "Laptops", first + timedelta(hours=1))
    dues = sorted(
        OutgoingEmail.objects.filter(recipient=reviewer).values_list("next_attempt_at", flat=True)
    )
    assert dues == [
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
    ]
    assert beat(dues[0]) == 1
    assert beat(dues[1]) == 1
    assert OutgoingEmail.objects.filter(kind="digest").count() == 2
