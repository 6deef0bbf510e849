"""E-mail: every notification is a message received by a real SMTP server (aiosmtpd on a free
port), read back as a reader's client would: headers, both parts, the links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.integrations.email.models import OutgoingEmail
from approvals.integrations.email.services import email_messages_send
from approvals.models import NotificationKind
from approvals.services.discussion import comment_add
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import publish
from tests.approvals.integrations.email.mail_flows import NOW, desk_flow, send_all
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SITE = "https://signoff.example.com"


def subject_of(message) -> str:
    return message["Subject"].strip()


def links(text: str) -> list[str]:
    return re.findall(r"https://signoff\.example\.com/\S+", text)


# ----- what a reviewer receives


def test_a_new_task_is_an_e_mail_with_both_parts_a_link_and_threading(
    smtp, desks, reviewer, reviewer2
):
    task = desks.tasks.get()
    rows = OutgoingEmail.objects.order_by("to")
    assert [(r.to, r.kind, r.status) for r in rows] == [
        (reviewer2.email, NotificationKind.TASK_NEW, "pending"),
        (reviewer.email, NotificationKind.TASK_NEW, "pending"),
    ]
    assert smtp.received == []  # nothing leaves inside the transaction, nor before a worker

    send_all()

    assert sorted(r.rcpt_tos[0] for r in smtp.received) == sorted([reviewer.email, reviewer2.email])
    (got,) = smtp.to(reviewer.email)
    message = got.message
    # Django folds an encoded subject onto a line of its own; readers unfold it.
    assert subject_of(message) == "[Signoff] Approve: Standing desks (15,000 EUR) — due Fri 4 Dec"
    assert message["From"] == "Signoff <signoff@example.com>"
    assert message["To"] == reviewer.email
    row = OutgoingEmail.objects.get(recipient=reviewer)
    assert message["Message-ID"] == f"<{row.message_id}>"
    assert row.message_id.endswith("@signoff.example.com")
    thread = f"<request-{desks.pk}@signoff.example.com>"
    assert message["In-Reply-To"] == thread
    assert message["References"] == thread
    assert message["List-Unsubscribe"].strip() == f"<{SITE}/accounts/profile/notifications/>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"

    task_url = f"{SITE}/tasks/{task.pk}/"
    text, html = got.text, got.html
    for part in (text, html):
        assert task_url in part
        assert "Standing desks" in part
        assert "15,000 EUR" in part
        assert "Rita Requester" in part
        assert "Replies to this message go nowhere" in part
    # Readable without images or styles: none to load, and the link is written out.
    assert "<img" not in html and "stylesheet" not in html and "<style" not in html
    assert f'<a href="{task_url}">Open in Signoff</a>' in html
    decide = [u for u in links(text) if "/email/decide/" in u]
    assert len(decide) == 3
    assert "Approve: " in text and "Reject: " in text and "Request changes: " in text
    for url in decide:
        assert url in html
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, NOW)
    assert row.subject == subject_of(message)


def test_the_decision_on_my_request_is_in_the_same_conversation(smtp, desks, reviewer, requester):
    send_all()
    task = desks.tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW + timedelta(hours=1))
    send_all(NOW + timedelta(hours=1))
    (to_rita,) = smtp.to(requester.email)
    (to_rob,) = smtp.to(reviewer.email)
    assert to_rita.message["References"] == to_rob.message["References"]
    assert to_rita.message["Message-ID"] != to_rob.message["Message-ID"]
    assert subject_of(to_rita.message).startswith("[Signoff] Rob Reviewer approved")
    assert "/email/decide/" not in to_rita.text  # nothing to decide in it
    assert f"{SITE}/requests/{desks.pk}/" in to_rita.text


def test_a_comment_on_my_request_is_an_e_mail_in_its_conversation(smtp, desks, reviewer, requester):
    send_all()
    comment_add(
        instance_id=desks.pk,
        body="@rita which floor do they go to?",
        actor=reviewer,
        now=NOW + timedelta(minutes=5),
    )
    send_all(NOW + timedelta(minutes=5))
    (to_rita,) = smtp.to(requester.email)
    assert subject_of(to_rita.message) == (
        "[Signoff] Rob Reviewer commented on your request Standing desks"
    )
    (to_rob,) = smtp.to(reviewer.email)
    assert to_rita.message["References"] == to_rob.message["References"]
    assert f"{SITE}/requests/{desks.pk}/" in to_rita.text


def test_the_subject_s_due_day_is_the_reader_s(smtp, requester, reviewer):
    # 23:30 UTC on Friday is already Saturday in Tokyo.
    reviewer.time_zone = "Asia/Tokyo"
    reviewer.save()
    publish(desk_flow())
    instance_start(
        definition_key="review",
        context={"title": "Chairs", "amount": 90, "currency": "USD"},
        title="Chairs",
        actor=requester,
        now=datetime(2026, 12, 2, 23, 30, tzinfo=UTC),
    )
    send_all(datetime(2026, 12, 2, 23, 30, tzinfo=UTC))
    (got,) = smtp.to(reviewer.email)
    assert subject_of(got.message) == "[Signoff] Approve: Chairs (90 USD) — due Sat 5 Dec"
    assert "JST" in got.text


def test_sending_twice_sends_once(smtp, desks):
    send_all()
    ids = list(OutgoingEmail.objects.values_list("pk", flat=True))
    assert email_messages_send(ids=ids, now=NOW) == {}
    assert len(smtp.received) == 2


def test_people_without_an_address_get_no_e_mail(smtp, requester):
    UserFactory(username="noaddress", email="", groups=[])
    publish(desk_flow())
    from django.contrib.auth.models import Group

    Group.objects.get(name="manager").user_set.add(
        UserFactory(username="nomail", email=""), UserFactory(username="withmail")
    )
    instance_start(
        definition_key="review",
        context={"title": "Pens", "amount": 5, "currency": "EUR"},
        actor=requester,
        now=NOW,
    )
    assert list(OutgoingEmail.objects.values_list("to", flat=True)) == ["withmail@example.com"]


def test_with_e_mail_turned_off_nothing_is_written(settings, smtp, requester, reviewer):
    settings.EMAIL_NOTIFICATIONS = False
    publish(desk_flow())
    instance_start(
        definition_key="review",
        context={"title": "Pens", "amount": 5, "currency": "EUR"},
        actor=requester,
        now=NOW,
    )
    assert not OutgoingEmail.objects.exists()


# ----- when the server says no


def test_a_4xx_answer_is_retried_with_backoff_then_sent(smtp, desks, reviewer):
    smtp.answers[reviewer.email] = ["451 4.3.0 Mailbox busy, try later", "250 OK"]
    delays = send_all()
    row = OutgoingEmail.objects.get(recipient=reviewer)
    assert row.status == "pending"
    assert "451" in row.last_error and "Mailbox busy" in row.last_error
    assert delays[row.pk] > 0
    assert row.next_attempt_at == NOW + timedelta(seconds=delays[row.pk])
    assert smtp.to(reviewer.email) == []
    # Not before its time...
    assert email_messages_send(ids=[row.pk], now=NOW + timedelta(seconds=1)) == {}
    # ...then it goes.
    later = row.next_attempt_at
    assert email_messages_send(ids=[row.pk], now=later) == {row.pk: None}
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(smtp.to(reviewer.email)) == 1


def test_a_server_that_cannot_be_reached_is_tried_again(settings, smtp, desks):
    settings.EMAIL_PORT = smtp.port + 1 if smtp.port < 65535 else smtp.port - 1
    delays = send_all()
    assert all(d and d > 0 for d in delays.values())
    rows = OutgoingEmail.objects.all()
    assert {r.status for r in rows} == {"pending"}
    assert all("could not send" in r.last_error for r in rows)


def test_a_5xx_answer_fails_at_once_and_is_shown_to_admins_with_resend(
    smtp, desks, reviewer, reviewer2, admin_user, client
):
    smtp.answers[reviewer.email] = ["550 5.1.1 No such mailbox"]
    send_all()
    failed = OutgoingEmail.objects.get(recipient=reviewer)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "550" in failed.last_error and "No such mailbox" in failed.last_error
    assert OutgoingEmail.objects.get(recipient=reviewer2).status == "sent"

    client.force_login(admin_user)
    listing = client.get(reverse("admin:approvals_outgoingemail_changelist") + "?status=failed")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "No such mailbox" in body and reviewer.email in body
    assert reviewer2.email not in body

    smtp.answers[reviewer.email] = ["250 OK"]
    response = client.post(
        reverse("admin:approvals_outgoingemail_changelist"),
        {"action": "resend", "_selected_action": [failed.pk]},
        follow=True,
    )
    assert "1 e-mail(s) queued again." in response.content.decode()
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("pending", 0, "")
    email_messages_send(ids=[failed.pk], now=timezone.now())
    assert len(smtp.to(reviewer.email)) == 1


def test_a_refused_message_body_fails_for_good(smtp, desks):
    smtp.data_answer = "554 5.6.0 Message refused"
    send_all()
    assert set(OutgoingEmail.objects.values_list("status", flat=True)) == {"failed"}


def test_the_last_attempt_fails_visibly(settings, smtp, desks, reviewer):
    settings.EMAIL_MAX_ATTEMPTS = 2
    smtp.answers[reviewer.email] = ["421 4.7.0 Too many connections"]
    row = OutgoingEmail.objects.get(recipient=reviewer)
    email_messages_send(ids=[row.pk], now=NOW)
    row.refresh_from_db()
    email_messages_send(ids=[row.pk], now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 2)
    assert "421" in row.last_error


def test_a_staff_member_who_is_not_superuser_cannot_resend(smtp, desks, client):
    staff = UserFactory(username="stan", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_outgoingemail"))
    client.force_login(staff)
    page = client.get(reverse("admin:approvals_outgoingemail_changelist"))
    assert page.status_code == 200
    assert "resend" not in page.content.decode()


def test_an_outsider_cannot_see_the_e_mails_in_the_admin(smtp, desks, outsider, client):
    client.force_login(outsider)
    page = client.get(reverse("admin:approvals_outgoingemail_changelist"))
    assert page.status_code == 302  # to the admin's sign-in


def test_an_smtp_outage_neither_blocks_nor_rolls_back_a_decision(settings, smtp, desks, reviewer):
    settings.EMAIL_PORT = 1  # nothing listens there
    task = desks.tasks.get()
    result = task_decide(task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW)
    assert result.moved
    desks.refresh_from_db()
    assert desks.status == "completed"
    assert OutgoingEmail.objects.filter(kind=NotificationKind.COMPLETED).count() == 1


def test_the_embedded_default_writes_readable_files(settings, tmp_path, desks, reviewer):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    send_all()
    written = "".join(p.read_text() for p in tmp_path.iterdir())
    assert written.count("Message-ID: <") == 2
    assert "Open in Signoff: https://signoff.example.com/tasks/" in written
