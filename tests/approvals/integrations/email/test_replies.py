"""Replying to an e-mail comments on the request: the message's signed Reply-To names the
request and the reader, the provider's inbound webhook (Postmark's JSON, HTTP Basic with
INBOUND_EMAIL_SECRET) posts the reply, and it becomes that person's comment, once."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client

from approvals.integrations.email import replies
from approvals.models import AuditEvent, Comment
from tests.approvals.integrations.email.mail_flows import send_all

SECRET = "inbound-secret-for-tests"
URL = "/email/inbound/"


@pytest.fixture
def inbound(settings, smtp):
    settings.INBOUND_EMAIL_SECRET = SECRET
    settings.INBOUND_EMAIL_DOMAIN = "reply.example.com"
    return smtp


def post(payload: Any, *, password: str = SECRET, raw: bytes | None = None):
    token = base64.b64encode(f"postmark:{password}".encode()).decode()
    return Client().post(
        URL,
        raw if raw is not None else json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {token}",
    )


def postmark(to: str, sender: str, text: str, message_id: str = "m-1", stripped: str = ""):
    return {
        "From": sender,
        "FromFull": {"Email": sender, "Name": ""},
        "To": to,
        "ToFull": [{"Email": to, "Name": ""}],
        "OriginalRecipient": to,
        "Subject": "Re: [Signoff] Approve: Standing desks",
        "MessageID": message_id,
        "TextBody": text,
        "StrippedTextReply": stripped,
    }


def reply_to_of(sink, address: str) -> str:
    (sent,) = sink.to(address)
    return sent.message["Reply-To"]


def test_a_reply_becomes_the_readers_comment_once(inbound, desks, reviewer) -> None:
    send_all()
    address = reply_to_of(inbound, reviewer.email)
    assert address == replies.reply_address(desks.pk, reviewer.pk)
    assert address.startswith(f"reply+{desks.pk}.{reviewer.pk}.")
    assert address.endswith("@reply.example.com") and len(address.split("@")[0]) <= 64
    (sent,) = inbound.to(reviewer.email)
    assert "Reply to this message to comment on the request" in sent.text
    text = "Which floor?\n\nOn Wed, 2 Dec 2026, Signoff wrote:\n> Approve: Standing desks"
    answer = post(postmark(address, reviewer.email.upper(), text))
    assert answer.status_code == 200, answer.content
    comment = Comment.objects.get(pk=answer.json()["comment"])
    assert (comment.author, comment.body, comment.instance_id) == (
        reviewer,
        "Which floor?",
        desks.pk,
    )
    event = AuditEvent.objects.get(instance=desks, event="comment.added")
    assert event.channel == "email" and event.data["email_message_id"] == "m-1"
    # The provider delivering it again posts nothing new.
    again = post(postmark(address, reviewer.email, text))
    assert again.status_code == 200 and again.json()["comment"] == comment.pk
    assert Comment.objects.count() == 1


def test_the_providers_stripped_reply_is_preferred(inbound, desks, reviewer) -> None:
    address = replies.reply_address(desks.pk, reviewer.pk)
    answer = post(postmark(address, reviewer.email, "whole > quoted", stripped="Only this."))
    assert Comment.objects.get(pk=answer.json()["comment"]).body == "Only this."


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("forged mac", 403),
        ("another reader's address", 403),
        ("from someone else", 403),
        ("not a reply address", 403),
        ("empty reply", 400),
        ("outsider's own address", 403),
    ],
)
def test_bad_replies_are_refused_and_nothing_is_posted(
    inbound, desks, reviewer, outsider, change, status
) -> None:
    address = replies.reply_address(desks.pk, reviewer.pk)
    sender, text = reviewer.email, "Fine."
    if change == "forged mac":
        address = address.replace(address.split("@")[0][-4:], "0000")
    elif change == "another reader's address":
        mac = address.split("@")[0].rsplit(".", 1)[1]
        address = f"reply+{desks.pk}.{outsider.pk}.{mac}@reply.example.com"
    elif change == "from someone else":
        sender = "mallory@example.com"
    elif change == "not a reply address":
        address = "signoff@reply.example.com"
    elif change == "empty reply":
        text = "> only the quote"
    else:
        # A genuine address of the outsider, who may not see the request.
        address, sender = replies.reply_address(desks.pk, outsider.pk), outsider.email
    answer = post(postmark(address, sender, text))
    assert answer.status_code == status, answer.content
    assert not Comment.objects.exists()


def test_the_webhook_needs_its_password_and_json(inbound, desks, reviewer) -> None:
    address = replies.reply_address(desks.pk, reviewer.pk)
    assert post(postmark(address, reviewer.email, "Hi"), password="wrong").status_code == 401
    unsigned = Client().post(URL, "{}", content_type="application/json")
    assert unsigned.status_code == 401
    assert post(None, raw=b"not json").status_code == 400
    assert post(["a", "list"]).status_code == 400
    assert Client().get(URL).status_code == 405
    assert not Comment.objects.exists()


def test_without_the_secret_replies_go_nowhere(smtp, desks, reviewer, settings) -> None:
    settings.INBOUND_EMAIL_SECRET = ""
    send_all()
    (sent,) = smtp.to(reviewer.email)
    assert sent.message["Reply-To"] is None
    assert "Replies to this message go nowhere" in sent.text
    assert post({}, password="").status_code == 404
