"""Slack: messages posted to a local server speaking Slack's Web API, and signed button presses
through the interactivity endpoint (built with Slack's real signing algorithm)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.urls import reverse
from slack_sdk.signature import SignatureVerifier

from accounts.models import NotificationPreference, Role
from approvals.integrations.slack.services import slack_interaction_answer, slack_message_send
from approvals.models import (
    AuditEvent,
    Decision,
    InstanceStatus,
    SlackInteraction,
    SlackMessage,
    SlackMessageStatus,
    TaskStatus,
)
from approvals.services.discussion import comment_add
from approvals.services.instances import instance_start
from approvals.services.task_work import task_decide
from tests.approvals.flows import NOW, publish, review_flow
from tests.approvals.integrations.slack.fake_slack import FakeSlackServer
from tests.approvals.integrations.webhooks.receiver import listener

pytestmark = pytest.mark.django_db

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
URL = "/slack/interactivity/"


@pytest.fixture
def slack(settings):
    cache.clear()
    server = FakeSlackServer()
    with server as fake:
        fake.url = server.url
        settings.SLACK_BOT_TOKEN = "xoxb-test-token"
        settings.SLACK_SIGNING_SECRET = SECRET
        settings.SLACK_API_URL = server.url + "/api/"
        settings.SITE_URL = "https://signoff.example.com"
        settings.SLACK_MAX_ATTEMPTS = 3
        yield fake


@pytest.fixture
def people(slack, requester, reviewer, reviewer2, outsider):
    reviewer.slack_user_id = "UROB"
    reviewer.save()
    # Mia has no Slack id stored: found by her e-mail address.
    slack.add_member("UMIA", reviewer2.email)
    slack.add_member("UROB", reviewer.email)
    slack.add_member("UOTTO", outsider.email)
    outsider.slack_user_id = "UOTTO"
    outsider.save()
    return {"rita": requester, "rob": reviewer, "mia": reviewer2, "otto": outsider}


@pytest.fixture
def instance(people):
    publish(review_flow(sla="P2D"))
    return instance_start(
        definition_key="review",
        context={"title": "Laptop", "amount": 900},
        actor=people["rita"],
        now=NOW,
    )


def send_all() -> None:
    for message in SlackMessage.objects.order_by("pk"):
        slack_message_send(message_id=message.pk, now=NOW)


# ----- messages


def test_a_new_task_is_a_direct_message_with_a_deep_link_and_buttons(slack, people, instance):
    task = instance.tasks.get()
    assert SlackMessage.objects.count() == 2  # Rob and Mia; the requester is told nothing yet
    send_all()
    posts = slack.called("chat.postMessage")
    assert sorted(p["channel"] for p in posts) == ["UMIA", "UROB"]
    assert {c.token for c in slack.calls} == {"xoxb-test-token"}
    post = posts[0]
    assert post["text"] == "New task: Review for “Laptop”"
    link = f"https://signoff.example.com/tasks/{task.pk}/"
    assert f"<{link}|New task: Review for “Laptop”>" in post["blocks"][0]["text"]["text"]
    actions = post["blocks"][-1]["elements"]
    assert [(a["text"]["text"], a.get("style")) for a in actions] == [
        ("Approve", "primary"),
        ("Reject", "danger"),
        ("Request changes", None),
        ("Open in Signoff", None),
    ]
    assert json.loads(actions[0]["value"]) == {"task": task.pk, "event": "APPROVE"}
    assert actions[-1]["url"] == link
    assert "Due" in json.dumps(post["blocks"][1])
    sent = SlackMessage.objects.get(recipient=people["rob"])
    assert (sent.status, sent.channel_id, sent.attempts) == ("sent", "UROB", 1)
    assert sent.ts and sent.sent_at == NOW
    # Mia's Slack id was looked up by e-mail once and kept.
    people["mia"].refresh_from_db()
    assert people["mia"].slack_user_id == "UMIA"
    assert slack.called("users.lookupByEmail") == [{"email": people["mia"].email}]


def test_a_comment_reaches_its_readers_in_slack_with_a_link_to_the_request(slack, people, instance):
    people["rita"].slack_user_id = "URITA"
    people["rita"].save()
    send_all()
    comment_add(
        instance_id=instance.pk,
        body="Which cost centre, @rita?",
        actor=people["rob"],
        now=NOW,
        question=True,
    )
    message = SlackMessage.objects.get(recipient=people["rita"], kind="question")
    slack_message_send(message_id=message.pk, now=NOW)
    post = slack.called("chat.postMessage")[-1]
    assert post["channel"] == "URITA"
    link = f"https://signoff.example.com/requests/{instance.pk}/"
    assert post["blocks"][0]["text"]["text"] == (
        f"*Question for you*\n<{link}|Question for you from Rob Reviewer on “Laptop”>"
    )
    (button,) = post["blocks"][-1]["elements"]
    assert (button["action_id"], button["url"]) == ("signoff_open", link)
    # Whoever turned Slack off for the kind gets none.
    NotificationPreference.objects.create(user=people["rita"], kind="comment", slack=False)
    comment_add(instance_id=instance.pk, body="Also: which week?", actor=people["rob"], now=NOW)
    assert not SlackMessage.objects.filter(recipient=people["rita"], kind="comment").exists()


def test_sending_twice_posts_once(slack, instance):
    send_all()
    send_all()
    assert len(slack.called("chat.postMessage")) == 2


def test_a_decision_on_my_request_reaches_me_without_buttons(slack, people, instance):
    people["rita"].slack_user_id = "URITA"
    people["rita"].save()
    task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=people["rob"], now=NOW)
    message = SlackMessage.objects.get(recipient=people["rita"])
    slack_message_send(message_id=message.pk, now=NOW)
    post = slack.called("chat.postMessage")[-1]
    assert post["channel"] == "URITA"
    assert (
        "Rob Reviewer approved the Review step of “Laptop”; your request was approved"
        in post["text"]
    )
    assert [a["action_id"] for a in post["blocks"][-1]["elements"]] == ["signoff_open"]


def test_someone_slack_does_not_know_is_skipped_not_retried(slack, people, instance):
    slack.members.pop("UMIA")
    message = SlackMessage.objects.get(recipient=people["mia"])
    assert slack_message_send(message_id=message.pk, now=NOW) is None
    message.refresh_from_db()
    assert message.status == SlackMessageStatus.SKIPPED
    assert message.last_error == "no Slack account for this user"


def test_a_role_channel_gets_one_message_instead_of_each_member(slack, people, requester):
    publish(review_flow())
    Role.objects.filter(group__name="manager").update(slack_channel="CMANAGERS")
    instance_start(
        definition_key="review", context={"title": "Desk", "amount": 1}, actor=requester, now=NOW
    )
    message = SlackMessage.objects.get()
    assert (message.role.name, message.recipient) == ("manager", None)
    slack_message_send(message_id=message.pk, now=NOW)
    assert [p["channel"] for p in slack.called("chat.postMessage")] == ["CMANAGERS"]


def test_429_waits_for_retry_after_without_counting_an_attempt(slack, people, instance):
    message = SlackMessage.objects.get(recipient=people["rob"])
    slack.queue(
        "chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}
    )
    assert slack_message_send(message_id=message.pk, now=NOW) == 7
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("pending", 0)
    assert message.next_attempt_at == NOW + timedelta(seconds=7)
    assert "ratelimited" in message.last_error
    # Not before Slack said: nothing is sent.
    assert slack_message_send(message_id=message.pk, now=NOW + timedelta(seconds=6)) is None
    assert len(slack.called("chat.postMessage")) == 1
    assert slack_message_send(message_id=message.pk, now=NOW + timedelta(seconds=7)) is None
    message.refresh_from_db()
    assert message.status == "sent" and len(slack.called("chat.postMessage")) == 2


def test_errors_back_off_then_fail_visibly_to_admins(slack, people, instance, admin_user, client):
    message = SlackMessage.objects.get(recipient=people["rob"])
    for _ in range(3):
        slack.queue("chat.postMessage", 500, {"ok": False, "error": "internal_error"})
    now = NOW
    delays = []
    for _ in range(3):
        delays.append(slack_message_send(message_id=message.pk, now=now))
        now += timedelta(hours=2)
    assert delays == [10, 20, None]
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 3)
    assert message.last_error == "Slack answered internal_error"
    client.force_login(admin_user)
    page = client.get(reverse("admin:approvals_slackmessage_changelist") + "?status__exact=failed")
    assert page.status_code == 200 and "Slack answered internal_error" in page.content.decode()


def test_a_redirect_from_slack_is_not_followed_and_the_token_stays_home(slack, people, instance):
    message = SlackMessage.objects.get(recipient=people["rob"])
    with listener() as internal:
        slack.queue("chat.postMessage", 302, {}, {"Location": internal.url})
        delay = slack_message_send(message_id=message.pk, now=NOW)
    assert internal.requests == []
    message.refresh_from_db()
    assert (message.status, delay) == ("pending", 10)  # retried as any failure
    assert message.last_error == (
        f"could not reach Slack: Slack's API answered HTTP 302 Found: redirect to "
        f"{internal.url} not followed (outgoing calls never follow redirects)"
    )


def test_a_permanent_error_fails_at_once(slack, people, instance):
    message = SlackMessage.objects.get(recipient=people["rob"])
    slack.queue("chat.postMessage", 200, {"ok": False, "error": "channel_not_found"})
    assert slack_message_send(message_id=message.pk, now=NOW) is None
    message.refresh_from_db()
    assert message.status == "failed" and message.attempts == 1


def test_a_slack_outage_neither_blocks_nor_rolls_back_a_decision(
    settings, django_capture_on_commit_callbacks, people, instance
):
    from workflow_app.celery import app

    settings.SLACK_API_URL = "http://127.0.0.1:9/api/"  # nothing listens there
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = task_decide(
                task_id=instance.tasks.get().pk, event="APPROVE", actor=people["rob"], now=NOW
            )
    finally:
        app.conf.task_always_eager = False
    assert result.instance.status == InstanceStatus.COMPLETED
    failed = SlackMessage.objects.exclude(last_error="")
    assert failed.exists()
    assert all("could not reach Slack" in m.last_error for m in failed)


def test_without_a_token_nothing_is_queued_for_slack(settings, requester, reviewer):
    settings.SLACK_BOT_TOKEN = ""
    publish(review_flow())
    instance_start(
        definition_key="review", context={"title": "Desk", "amount": 1}, actor=requester, now=NOW
    )
    assert not SlackMessage.objects.exists()


# ----- interactivity


def press(slack, task, event, *, user="UROB", action_ts="1762070400.000100"):
    return {
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": f"trigger-{action_ts}",
        "response_url": f"{slack.url}/response/hook",
        "container": {"channel_id": user.replace("U", "D", 1), "message_ts": "1001.0001"},
        "message": {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "task"}}]},
        "actions": [
            {
                "action_id": f"signoff_decide:{event}",
                "value": json.dumps({"task": task.pk, "event": event}),
                "action_ts": action_ts,
            }
        ],
    }


def signed(client, payload, *, timestamp=None, tamper=None, secret=SECRET):
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    if tamper:
        body = body.replace(*tamper)
    return client.post(
        URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def test_approve_from_slack_decides_through_the_service_and_updates_the_message(
    slack, people, instance, client, django_capture_on_commit_callbacks
):
    task = instance.tasks.get()
    with django_capture_on_commit_callbacks() as callbacks:
        answer = signed(client, press(slack, task, "APPROVE"))
    assert answer.status_code == 200 and answer.content == b""
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    decision = Decision.objects.get()
    assert (decision.actor, decision.event) == (people["rob"], "APPROVE")
    assert AuditEvent.objects.get(event="task.decided").channel == "slack"
    interaction = SlackInteraction.objects.get()
    assert interaction.outcome == "done" and interaction.user == people["rob"]
    assert callbacks, "the message is updated after commit, by Celery"
    assert slack_interaction_answer(interaction_id=interaction.pk, blocks=[{"type": "actions"}])
    update = slack.called("response_url")[-1]
    assert update["replace_original"] is True
    assert update["blocks"][-1]["type"] == "context"
    assert "Approve by Rob Reviewer" in update["blocks"][-1]["elements"][0]["text"]
    assert all(b["type"] != "actions" for b in update["blocks"])


def test_a_replayed_press_does_nothing_twice(slack, people, instance, client):
    task = instance.tasks.get()
    payload = press(slack, task, "APPROVE")
    assert signed(client, payload).status_code == 200
    assert signed(client, payload).status_code == 200
    assert Decision.objects.count() == 1 and SlackInteraction.objects.count() == 1
    assert AuditEvent.objects.filter(event="task.decided").count() == 1


@pytest.mark.parametrize(
    "how",
    ["tampered", "old", "future", "wrong secret", "unsigned"],
)
def test_bad_or_old_signatures_get_401_and_change_nothing(slack, people, instance, client, how):
    task = instance.tasks.get()
    payload = press(slack, task, "APPROVE")
    if how == "tampered":
        answer = signed(client, payload, tamper=("UROB", "UMIA"))
    elif how == "old":
        answer = signed(client, payload, timestamp=int(time.time()) - 6 * 60)
    elif how == "future":
        answer = signed(client, payload, timestamp=int(time.time()) + 6 * 60)
    elif how == "wrong secret":
        answer = signed(client, payload, secret="not-the-secret")
    else:
        answer = client.post(URL, {"payload": json.dumps(payload)})
    assert answer.status_code == 401
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    assert not Decision.objects.exists() and not SlackInteraction.objects.exists()


def test_an_unknown_slack_user_is_refused_and_told(slack, people, instance, client):
    slack.add_member("UNOBODY", "nobody@elsewhere.example")
    task = instance.tasks.get()
    assert signed(client, press(slack, task, "APPROVE", user="UNOBODY")).status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and not Decision.objects.exists()
    interaction = SlackInteraction.objects.get()
    assert interaction.outcome == "refused" and interaction.user is None
    assert "not linked to a Signoff user" in interaction.detail
    assert slack_interaction_answer(interaction_id=interaction.pk, blocks=None)
    told = slack.called("response_url")[-1]
    assert told["response_type"] == "ephemeral" and told["replace_original"] is False


def test_an_outsider_gets_exactly_the_web_s_refusal(slack, people, instance, client):
    task = instance.tasks.get()
    signed(client, press(slack, task, "APPROVE", user="UOTTO"))
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and not Decision.objects.exists()
    interaction = SlackInteraction.objects.get()
    assert interaction.user == people["otto"]
    assert interaction.detail == "You are not in a role this task is offered to."


def test_a_second_reviewer_is_told_who_decided_first(slack, people, instance, client):
    task = instance.tasks.get()
    task_decide(task_id=task.pk, event="APPROVE", actor=people["rob"], now=NOW)
    signed(client, press(slack, task, "APPROVE", user="UMIA"))
    interaction = SlackInteraction.objects.get()
    assert interaction.outcome == "refused"
    assert interaction.detail.startswith("Already decided by Rob Reviewer")
    assert Decision.objects.count() == 1


def test_reject_asks_for_a_reason_in_a_modal_then_decides(slack, people, instance, client):
    task = instance.tasks.get()
    assert signed(client, press(slack, task, "REJECT")).status_code == 200
    assert not Decision.objects.exists()
    view = slack.called("views.open")[-1]["view"]
    assert view["blocks"][0]["block_id"] == "comment"
    submission = {
        "type": "view_submission",
        "user": {"id": "UROB"},
        "view": {
            "id": "V123",
            "hash": "h1",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": {"comment": {"comment": {"value": " "}}}},
        },
    }
    empty = signed(client, submission)
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"comment": "Say why (required)."},
    }
    assert not Decision.objects.exists()
    submission["view"]["state"]["values"]["comment"]["comment"]["value"] = "Over budget"
    assert signed(client, submission).status_code == 200
    decision = Decision.objects.get()
    assert (decision.event, decision.comment, decision.actor) == (
        "REJECT",
        "Over budget",
        people["rob"],
    )


def test_bad_payloads_are_400_and_get_is_refused(slack, people, instance, client):
    task = instance.tasks.get()
    assert client.get(URL).status_code == 405
    broken = press(slack, task, "APPROVE")
    broken["actions"][0]["value"] = "not json"
    assert signed(client, broken).status_code == 400
    assert signed(client, {"type": "block_actions"}).status_code == 400
    assert not Decision.objects.exists()


def test_without_a_signing_secret_the_endpoint_is_off(settings, client):
    settings.SLACK_SIGNING_SECRET = ""
    assert client.post(URL, {"payload": "{}"}).status_code == 404


def test_deciding_on_the_web_removes_the_buttons_from_everyone_s_message(
    slack, people, instance, django_capture_on_commit_callbacks
):
    from approvals.integrations.slack.services import slack_messages_refresh

    send_all()
    with django_capture_on_commit_callbacks() as callbacks:
        task_decide(task_id=instance.tasks.get().pk, event="APPROVE", actor=people["rob"], now=NOW)
    assert callbacks, "the refresh is scheduled after commit"
    assert slack_messages_refresh(instance_id=instance.pk, now=NOW) is None
    updates = slack.called("chat.update")
    assert sorted(u["channel"] for u in updates) == ["UMIA", "UROB"]
    for update in updates:
        assert all(b["type"] != "actions" for b in update["blocks"])
        note = update["blocks"][-1]["elements"][0]["text"]
        assert note.startswith("✅ Already decided by Rob Reviewer") and "(APPROVE)" in note
    # Once only.
    assert slack_messages_refresh(instance_id=instance.pk, now=NOW) is None
    assert len(slack.called("chat.update")) == 2


def test_an_admin_sends_failed_messages_again(
    slack, people, instance, admin_user, client, django_capture_on_commit_callbacks
):
    message = SlackMessage.objects.get(recipient=people["rob"])
    slack.queue("chat.postMessage", 200, {"ok": False, "error": "not_in_channel"})
    slack_message_send(message_id=message.pk, now=NOW)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as callbacks:
        answer = client.post(
            reverse("admin:approvals_slackmessage_changelist"),
            {"action": "retry_now", "_selected_action": [message.pk]},
        )
    assert answer.status_code == 302 and len(callbacks) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("pending", 0)
    assert slack_message_send(message_id=message.pk, now=message.next_attempt_at) is None
    message.refresh_from_db()
    assert message.status == "sent"


def test_a_non_superuser_cannot_resend(slack, people, instance, client):
    from django.contrib.auth.models import Permission

    staff = people["otto"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_slackmessage"))
    message = SlackMessage.objects.get(recipient=people["rob"])
    SlackMessage.objects.filter(pk=message.pk).update(status="failed")
    client.force_login(staff)
    page = reverse("admin:approvals_slackmessage_changelist")
    assert client.get(page).status_code == 200
    client.post(page, {"action": "retry_now", "_selected_action": [message.pk]})
    message.refresh_from_db()
    assert message.status == "failed"


# ----- the profile's Slack identity: linked by e-mail through Slack, never typed in


def test_link_by_e_mail_on_the_profile_then_unlink(slack, people, client):
    mia = people["mia"]
    client.force_login(mia)
    assert "Link by my e-mail" in client.get("/accounts/profile/").content.decode()
    response = client.post("/accounts/profile/slack/", {"action": "link"}, follow=True)
    assert "Linked to Slack member UMIA." in response.content.decode()
    mia.refresh_from_db()
    assert mia.slack_user_id == "UMIA"
    client.post("/accounts/profile/slack/", {"action": "unlink"})
    mia.refresh_from_db()
    assert mia.slack_user_id == ""


def test_linking_refuses_unknown_e_mails_and_ids_taken_by_someone_else(slack, people, client):
    rita = people["rita"]
    client.force_login(rita)
    response = client.post("/accounts/profile/slack/", {"action": "link"}, follow=True)
    assert f"No Slack member has the e-mail {rita.email}." in response.content.decode()
    # Slack says Rita's e-mail is Rob's member: a stored link of Rob's is not taken over.
    slack.add_member("UROB", rita.email)
    response = client.post("/accounts/profile/slack/", {"action": "link"}, follow=True)
    assert "That Slack member is linked to another user." in response.content.decode()
    rita.refresh_from_db()
    assert rita.slack_user_id == ""


def test_linking_needs_slack_and_a_login(settings, client, requester):
    settings.SLACK_BOT_TOKEN = ""
    client.force_login(requester)
    assert (
        "Slack is not set up on this server." in client.get("/accounts/profile/").content.decode()
    )
    response = client.post("/accounts/profile/slack/", {"action": "link"}, follow=True)
    assert "Slack is not set up here." in response.content.decode()
    client.logout()
    assert client.post("/accounts/profile/slack/", {"action": "link"}).status_code == 302
    assert client.get("/accounts/profile/slack/").status_code == 302
