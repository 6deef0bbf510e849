"""Preferences: the page on the profile, the organisation's defaults in the admin, and what
they do to what leaves (e-mail and Slack), quiet hours included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse

from accounts.models import NotificationPreference, NotificationSchedule
from approvals.integrations.email.models import OutgoingEmail
from approvals.models import NotificationKind
from approvals.services.errors import NotAllowed
from approvals.services.instances import instance_start
from approvals.services.preferences import user_set_notification_preferences
from approvals.services.sla import sla_sweep
from tests.approvals.flows import publish
from tests.approvals.integrations.email.mail_flows import NOW, desk_flow

pytestmark = pytest.mark.django_db

URL = "/accounts/profile/notifications/"


def start(requester, now: datetime = NOW, **flow_task):
    flow = desk_flow()
    flow["states"]["review"]["meta"]["task"].update(flow_task)
    publish(flow)
    return instance_start(
        definition_key="review",
        context={"title": "Standing desks", "amount": 15000, "currency": "EUR"},
        actor=requester,
        now=now,
    )


def form_data(**changes) -> dict:
    data = {"digest_time": "08:00", "quiet_from": "", "quiet_until": ""}
    for kind in NotificationKind.values:
        data[f"{kind}-email"] = "on"
        data[f"{kind}-delivery"] = "immediate"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# ----- the page


def test_the_page_shows_every_kind_with_the_defaults(smtp, reviewer, client):
    client.force_login(reviewer)
    page = client.get(URL)
    assert page.status_code == 200
    body = page.content.decode()
    assert "New task" in body and "Escalation" in body and "Request finished" in body
    assert 'id="id_task_new-email" checked' in body
    assert "Daily digest at" in body and "Quiet from" in body
    assert reverse("notification_preferences") in client.get("/accounts/profile/").content.decode()


def test_saving_my_choices(smtp, reviewer, client):
    client.force_login(reviewer)
    response = client.post(
        URL,
        form_data(
            **{"task_new-email": None, "reminder-delivery": "daily"},
            digest_time="07:30",
            quiet_from="22:00",
            quiet_until="07:00",
            quiet_days=["5", "6"],
        ),
    )
    assert response.status_code == 302
    mine = {p.kind: p for p in NotificationPreference.objects.filter(user=reviewer)}
    assert mine["task_new"].email is False
    assert mine["reminder"].delivery == "daily"
    schedule = NotificationSchedule.objects.get(user=reviewer)
    assert (schedule.digest_time, schedule.quiet_from, schedule.quiet_until) == (
        time(7, 30),
        time(22, 0),
        time(7, 0),
    )
    assert schedule.quiet_days == [5, 6]
    page = client.get(URL).content.decode()
    assert 'id="id_task_new-email" checked' not in page


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"quiet_from": "22:00"}, "both ends"),
        ({"quiet_from": "22:00", "quiet_until": "22:00"}, "must not start as they end"),
        ({"quiet_days": [str(d) for d in range(7)]}, "at least one day"),
        ({"task_new-delivery": "weekly"}, "Select a valid choice"),
        ({"digest_time": "25:00"}, "Enter a valid time"),
    ],
)
def test_bad_choices_are_400_and_save_nothing(smtp, reviewer, client, changes, words):
    client.force_login(reviewer)
    response = client.post(URL, form_data(**changes))
    assert response.status_code == 400
    assert words in response.content.decode()
    assert not NotificationPreference.objects.exists()
    assert not NotificationSchedule.objects.exists()


def test_signed_out_the_page_asks_to_sign_in(client):
    assert client.get(URL)["Location"].startswith("/accounts/login/")


def test_nobody_changes_someone_else_s(smtp, reviewer, outsider):
    with pytest.raises(NotAllowed):
        user_set_notification_preferences(
            user_id=reviewer.pk,
            kinds={"task_new": {"email": False, "delivery": "immediate"}},
            digest_time=time(8),
            quiet_from=None,
            quiet_until=None,
            quiet_days=[],
            actor=outsider,
        )
    assert not NotificationPreference.objects.exists()


# ----- what the choices do


def test_turning_e_mail_off_for_a_kind_sends_none_of_it(smtp, requester, reviewer, reviewer2):
    NotificationPreference.objects.create(user=reviewer, kind="task_new", email=False)
    start(requester)
    assert list(OutgoingEmail.objects.values_list("recipient", flat=True)) == [reviewer2.pk]


def test_the_organisation_default_applies_unless_a_person_chose(
    smtp, requester, reviewer, reviewer2
):
    NotificationPreference.objects.create(user=None, kind="task_new", email=False)
    NotificationPreference.objects.create(user=reviewer2, kind="task_new", email=True)
    start(requester)
    assert list(OutgoingEmail.objects.values_list("recipient", flat=True)) == [reviewer2.pk]


def test_a_kind_in_a_digest_is_held_until_the_digest(smtp, requester, reviewer, reviewer2):
    NotificationPreference.objects.create(user=reviewer, kind="task_new", delivery="daily")
    start(requester)
    held = OutgoingEmail.objects.get(recipient=reviewer)
    assert held.status == "held"
    # NOW is 09:00 in the site's zone (UTC), past 08:00: tomorrow's digest.
    assert held.next_attempt_at == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert OutgoingEmail.objects.get(recipient=reviewer2).status == "pending"


def test_in_quiet_hours_mail_waits_for_their_end_but_escalations_do_not(
    smtp, requester, reviewer, reviewer2
):
    reviewer.time_zone = "America/New_York"
    reviewer.save()
    # 09:00 UTC is 04:00 in New York: quiet until 07:00 EST (12:00 UTC).
    NotificationSchedule.objects.create(
        user=reviewer, quiet_from=time(22, 0), quiet_until=time(7, 0)
    )
    instance = start(requester, sla="PT1H", escalate_to=["manager"])
    quiet = OutgoingEmail.objects.get(recipient=reviewer)
    assert (quiet.status, quiet.next_attempt_at) == (
        "pending",
        datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
    )
    assert OutgoingEmail.objects.get(recipient=reviewer2).next_attempt_at == NOW
    # An escalation two hours later, still quiet for Rob: it leaves at once.
    sla_sweep(now=NOW + timedelta(hours=2))
    escalation = OutgoingEmail.objects.get(recipient=reviewer, kind="escalation")
    assert escalation.next_attempt_at == NOW + timedelta(hours=2)
    assert instance.pk


def test_slack_follows_the_same_choices(settings, smtp, requester, reviewer, reviewer2):
    from approvals.models import SlackMessage

    settings.SLACK_BOT_TOKEN = "xoxb-test"
    NotificationPreference.objects.create(user=reviewer, kind="task_new", slack=False)
    NotificationSchedule.objects.create(
        user=reviewer2, quiet_from=time(8, 0), quiet_until=time(10, 0)
    )
    start(requester)
    (mia,) = SlackMessage.objects.all()
    assert mia.recipient == reviewer2
    assert mia.next_attempt_at == datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def test_admins_set_the_organisation_defaults(smtp, admin_user, client):
    client.force_login(admin_user)
    add = reverse("admin:accounts_notificationpreference_add")
    response = client.post(
        add, {"kind": "reminder", "email": "on", "delivery": "daily", "user": ""}
    )
    assert response.status_code == 302
    default = NotificationPreference.objects.get(user=None)
    assert (default.kind, default.delivery, default.slack) == ("reminder", "daily", False)
    again = client.post(add, {"kind": "reminder", "delivery": "hourly", "user": ""})
    assert again.status_code == 200  # one default per kind: the form says so
    assert NotificationPreference.objects.count() == 1
    bad = client.post(add, {"kind": "nonsense", "delivery": "daily", "user": ""})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
