"""A sensitive field in plaintext for those who may see the request (its pages, the API), for
nobody else; masked in e-mail, Teams, a webhook step's payload and the signed audit export."""

from __future__ import annotations

import io
import json
import logging
import zipfile

import pytest
from django.core.cache import cache
from django.core.management import call_command

from approvals.integrations.email.models import OutgoingEmail
from approvals.integrations.slack.services import slack_message_send
from approvals.integrations.teams.models import TeamsMessage
from approvals.integrations.teams.services import teams_message_send
from approvals.models import SlackMessage, WorkflowInstance
from approvals.sensitive import MASK, value_hash
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish
from tests.approvals.integrations.email.mail_flows import send_all
from tests.approvals.integrations.email.smtp_server import smtp_sink
from tests.approvals.integrations.slack.fake_slack import FakeSlackServer
from tests.approvals.integrations.teams.receiver import teams_receiver
from tests.approvals.integrations.webhooks.receiver import receiver
from tests.approvals.sensitive.conftest import stored
from tests.approvals.sensitive.flows import IBAN, payment_flow
from tests.approvals.services.test_automated_steps import attempt

pytestmark = pytest.mark.django_db


def test_the_requester_and_the_reviewer_see_it_on_their_pages(client, payment, requester, reviewer):
    client.force_login(requester)
    page = client.get(f"/requests/{payment.pk}/")
    assert page.status_code == 200 and IBAN in page.content.decode()
    client.force_login(reviewer)
    task = payment.tasks.get()
    page = client.get(f"/tasks/{task.pk}/")
    assert page.status_code == 200 and IBAN in page.content.decode()


def test_an_outsider_sees_neither_page(client, payment, outsider):
    client.force_login(outsider)
    task = payment.tasks.get()
    for url in (f"/requests/{payment.pk}/", f"/tasks/{task.pk}/"):
        response = client.get(url)
        assert response.status_code == 404 and IBAN not in response.content.decode()


def test_the_api_shows_it_to_the_requester_and_not_to_an_outsider(
    api, payment, requester, outsider
):
    mine = api(requester).get(f"/api/v1/instances/{payment.pk}/")
    assert mine.status_code == 200 and mine.json()["context"]["iban"] == IBAN
    theirs = api(outsider).get(f"/api/v1/instances/{payment.pk}/")
    assert theirs.status_code == 404 and IBAN not in theirs.content.decode()
    listed = api(outsider).get("/api/v1/instances/")
    assert IBAN not in listed.content.decode()


def test_the_e_mail_masks_it(settings, requester, reviewer):
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with smtp_sink() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_NOTIFICATIONS = True
        publish(payment_flow())
        instance_start(
            definition_key="payment",
            context={"title": "Desk supplier", "amount": 1200, "iban": IBAN},
            actor=requester,
            now=NOW,
        )
        assert OutgoingEmail.objects.filter(recipient=reviewer).exists()
        send_all()
        (got,) = smtp.to(reviewer.email)
    for part in (got.text, got.html):
        assert "Bank account (IBAN)" in part and MASK in part
        assert IBAN not in part
    assert IBAN not in str(got.message)
    assert "Desk supplier" in got.text  # the rest of the request is there


def test_the_teams_card_masks_it(settings, requester, reviewer):
    with teams_receiver() as teams:
        settings.TEAMS_ENABLED = True
        settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
        settings.EMAIL_NOTIFICATIONS = False
        reviewer.teams_webhook_url = teams.webhook("rob")
        reviewer.save()
        publish(payment_flow())
        instance_start(
            definition_key="payment",
            context={"title": "Desk supplier", "iban": IBAN},
            actor=requester,
            now=NOW,
        )
        for pk in TeamsMessage.objects.values_list("pk", flat=True):
            teams_message_send(message_id=pk, now=NOW)
        (post,) = teams.to("rob")
    card = json.dumps(post.card, ensure_ascii=False)
    assert IBAN not in card and MASK in card


def test_the_slack_message_holds_no_field(settings, requester, reviewer):
    cache.clear()
    server = FakeSlackServer()
    with server as slack:
        settings.SLACK_BOT_TOKEN = "xoxb-test-token"
        settings.SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
        settings.SLACK_API_URL = server.url + "/api/"
        reviewer.slack_user_id = "UROB"
        reviewer.save()
        publish(payment_flow())
        instance_start(
            definition_key="payment",
            context={"title": "Desk supplier", "iban": IBAN},
            actor=requester,
            now=NOW,
        )
        for message in SlackMessage.objects.order_by("pk"):
            slack_message_send(message_id=message.pk, now=NOW)
        (post,) = slack.called("chat.postMessage")
    assert "Desk supplier" in post["text"]
    assert IBAN not in json.dumps(post)


def test_a_webhook_step_posts_it_masked(settings, requester):
    settings.ALLOW_PRIVATE_WEBHOOK_TARGETS = True
    settings.WEBHOOK_SECRET = "webhook-secret-0123456789"
    config = payment_flow()
    config["states"]["paid"] = {
        "invoke": {"src": "webhook", "onDone": "done", "onError": "done"},
    }
    config["states"]["done"] = {"type": "final"}
    config["states"]["submitted"]["always"] = [{"target": "paid"}]
    del config["states"]["german_check"], config["states"]["review"], config["states"]["rejected"]
    with receiver(settings.WEBHOOK_SECRET) as hook:
        config["settings"] = {"webhook_url": hook.url}
        publish(config)
        instance = instance_start(
            definition_key="payment",
            context={"title": "Paid at once", "iban": IBAN},
            actor=requester,
            now=NOW,
        )
        assert attempt(instance) == "done"
        (post,) = hook.received
    assert post.json["context"] == {"title": "Paid at once", "iban": MASK}
    assert IBAN not in stored(WorkflowInstance.objects.get(pk=instance.pk))


def test_the_signed_export_carries_the_hash(payment, tmp_path):
    out = tmp_path / "bundle.zip"
    call_command(
        "export_audit", "--instance", str(payment.pk), "--out", str(out), stdout=io.StringIO()
    )
    with zipfile.ZipFile(out) as bundle:
        everything = b"".join(bundle.read(name) for name in bundle.namelist())
        events = bundle.read(f"requests/{payment.pk}/events.jsonl").decode().splitlines()
    assert IBAN.encode() not in everything
    started = json.loads(events[0])
    assert started["data"]["context"]["iban"] == {"$sha256": value_hash(IBAN)}


def test_the_replay_and_the_history_show_the_mask_not_the_hash(client, payment, requester):
    client.force_login(requester)
    page = client.get(f"/requests/{payment.pk}/replay/?seq=1").content.decode()
    assert MASK in page and value_hash(IBAN) not in page and IBAN not in page
    api_history = client.get(f"/api/v1/instances/{payment.pk}/history/")
    assert IBAN not in api_history.content.decode()
