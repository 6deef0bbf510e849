"""Microsoft Teams: Adaptive Cards posted to a local HTTP receiver that checks each against the
Adaptive Card JSON schema; a role's channel, a person's own webhook, follow-up cards when the
task closes, 429 with Retry-After, failures in the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import NotificationPreference, Role
from approvals.integrations.teams.models import TeamsMessage
from approvals.integrations.teams.services import teams_message_send
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import publish, review_flow
from tests.approvals.integrations.teams.receiver import check, teams_receiver

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SITE = "https://signoff.example.com"


@pytest.fixture
def teams(settings):
    with teams_receiver() as receiver:
        settings.TEAMS_ENABLED = True
        settings.TEAMS_MAX_ATTEMPTS = 3
        settings.SITE_URL = SITE
        settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True  # the receiver listens on 127.0.0.1
        settings.EMAIL_NOTIFICATIONS = False
        yield receiver


@pytest.fixture
def people(teams, requester, reviewer, reviewer2):
    reviewer.teams_webhook_url = teams.webhook("rob")
    reviewer.save()
    return {"rita": requester, "rob": reviewer, "mia": reviewer2}


def start(people, title: str = "Standing desks"):
    publish(review_flow(sla="P2D"))
    return instance_start(
        definition_key="review",
        context={"title": title, "amount": 15000},
        title=title,
        actor=people["rita"],
        now=NOW,
    )


def send_all(now: datetime = NOW) -> dict[int, float | None]:
    return {
        pk: teams_message_send(message_id=pk, now=now)
        for pk in TeamsMessage.objects.filter(status="pending")
        .order_by("pk")
        .values_list("pk", flat=True)
    }


def test_a_person_s_own_webhook_gets_a_valid_card_with_open_in_signoff(teams, people):
    instance = start(people)
    task = instance.tasks.get()
    # Mia has no webhook: nothing for her in Teams.
    (row,) = TeamsMessage.objects.all()
    assert (row.recipient, row.kind) == (people["rob"], "task_new")
    send_all()
    (post,) = teams.to("rob")
    assert post.card_errors == []
    card = post.card
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    texts = [b.get("text") for b in card["body"] if b["type"] == "TextBlock"]
    assert "New task: Review for “Standing desks”" in texts
    facts = {
        f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]
    }
    assert facts["Requested by"] == "Rita Requester"
    assert facts["Workflow"] == "Review"
    assert "Due" in facts and facts["Amount"] == "15,000"
    (action,) = card["actions"]
    assert action == {
        "type": "Action.OpenUrl",
        "title": "Open in Signoff",
        "url": f"{SITE}/tasks/{task.pk}/",
    }
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, NOW)


def test_a_role_channel_gets_one_card_instead_of_each_member(teams, people):
    role = Role.objects.get(group__name="manager")
    role.teams_webhook_url = teams.webhook("managers")
    role.save()
    start(people)
    (row,) = TeamsMessage.objects.all()
    assert row.role.name == "manager" and row.recipient is None
    send_all()
    assert len(teams.to("managers")) == 1 and teams.to("rob") == []
    assert teams.posts[0].card_errors == []


def test_a_closed_task_gets_a_follow_up_card_saying_who(teams, people):
    instance = start(people)
    send_all()
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=people["mia"], now=NOW)
    follow_up = TeamsMessage.objects.get(kind="closed")
    assert follow_up.follows.recipient == people["rob"]
    assert follow_up.text == "Approved by Mia Manager"
    send_all()
    _first, second = teams.to("rob")
    assert second.card_errors == []
    assert "Approved by Mia Manager" in [b.get("text") for b in second.card["body"]]
    # Seen closing again (the request finishing in a later change): no second follow-up.
    assert TeamsMessage.objects.filter(kind="closed").count() == 1


def test_a_card_whose_task_closed_before_it_went_is_not_sent(teams, people):
    instance = start(people)
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=people["mia"], now=NOW)
    send_all()
    assert teams.posts == []
    assert TeamsMessage.objects.get().status == "skipped"


def test_429_waits_for_retry_after_without_counting_an_attempt(teams, people):
    teams.answers = [(429, {"Retry-After": "17"}), (200, {})]
    start(people)
    row = TeamsMessage.objects.get()
    assert teams_message_send(message_id=row.pk, now=NOW) == 17
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    assert row.next_attempt_at == NOW + timedelta(seconds=17)
    assert "429" in row.last_error
    assert teams_message_send(message_id=row.pk, now=NOW + timedelta(seconds=5)) is None
    assert len(teams.posts) == 1  # not before its time
    teams_message_send(message_id=row.pk, now=NOW + timedelta(seconds=17))
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_server_errors_back_off_then_fail_visibly_with_resend(teams, people, admin_user, client):
    teams.answers = [(503, {})]
    start(people)
    row = TeamsMessage.objects.get()
    now = NOW
    for _ in range(3):
        delay = teams_message_send(message_id=row.pk, now=now)
        now += timedelta(seconds=(delay or 0) + 1)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 3)
    assert "503" in row.last_error
    client.force_login(admin_user)
    listing = client.get(reverse("admin:approvals_teamsmessage_changelist") + "?status=failed")
    assert "503" in listing.content.decode()
    teams.answers = [(200, {})]
    client.post(
        reverse("admin:approvals_teamsmessage_changelist"),
        {"action": "resend", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)
    teams_message_send(message_id=row.pk, now=timezone.now())
    row.refresh_from_db()
    assert row.status == "sent"


def test_a_gone_webhook_fails_at_once(teams, people):
    teams.answers = [(410, {})]
    start(people)
    row = TeamsMessage.objects.get()
    assert teams_message_send(message_id=row.pk, now=NOW) is None
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "410" in row.last_error


def test_a_private_webhook_address_is_refused_in_production(settings, teams, people):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = False
    start(people)
    row = TeamsMessage.objects.get()
    teams_message_send(message_id=row.pk, now=NOW)
    row.refresh_from_db()
    assert row.status == "failed" and "public addresses" in row.last_error
    assert teams.posts == []


def test_teams_follows_the_person_s_preferences(teams, people):
    NotificationPreference.objects.create(user=people["rob"], kind="task_new", teams=False)
    start(people)
    assert not TeamsMessage.objects.exists()


def test_turned_off_nothing_is_written(settings, teams, people):
    settings.TEAMS_ENABLED = False
    start(people)
    assert not TeamsMessage.objects.exists()


def test_the_receiver_refuses_a_card_the_schema_refuses():
    bad = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.5",
                    "body": [{"type": "TextBlock"}],
                },
            }
        ],
    }
    assert check(bad)
    assert check({"text": "hello"}) == ["not a Teams message with one Adaptive Card"]


def test_a_non_superuser_cannot_resend_and_an_outsider_sees_nothing(
    teams, people, outsider, client
):
    client.force_login(outsider)
    assert client.get(reverse("admin:approvals_teamsmessage_changelist")).status_code == 302
