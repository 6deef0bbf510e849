"""Approve / Reject / Request changes links in a task e-mail.

A link is a token signed with SECRET_KEY (Django's signing, its own salt) that names the
e-mail it was sent in, the task, the recipient, the decision and when it expires
(EMAIL_LINK_HOURS after the e-mail was sent). Following it only shows a confirmation page;
the decision is the POST of that page, and spends every link of that e-mail
(`OutgoingEmail.link_used_at`, set in the transaction of the decision), so a link works once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from approvals.formatting import moment
from approvals.integrations.email.models import OutgoingEmail
from approvals.links import absolute
from approvals.machine.words import event_label

SALT = "signoff.email.decide"
# Task kinds whose e-mail offers the decisions.
DECIDING_KINDS = frozenset({"task_new", "task_delegated", "reminder", "escalation"})
# The events offered as links, when the step has them, in this order.
LINK_EVENTS = ("APPROVE", "REJECT", "REQUEST_CHANGES")


@dataclass(frozen=True)
class LinkClaim:
    email_id: int
    task_id: int
    user_id: int
    event: str


class BadLink(Exception):
    """Not a link we made (tampered, truncated) or not for this decision."""


class ExpiredLink(Exception):
    pass


def make_token(*, email: OutgoingEmail, event: str, now: datetime) -> str:
    expires = now + timedelta(hours=settings.EMAIL_LINK_HOURS)
    payload = {
        "m": email.pk,
        "t": email.task_id,
        "u": email.recipient_id,
        "e": event,
        "x": int(expires.timestamp()),
    }
    return signing.Signer(salt=SALT).sign_object(payload)


def read_token(token: str, *, now: datetime) -> LinkClaim:
    """What a link says, checked: BadLink when it is not ours, ExpiredLink when too old."""
    try:
        payload = signing.Signer(salt=SALT).unsign_object(token)
        claim = LinkClaim(
            email_id=int(payload["m"]),
            task_id=int(payload["t"]),
            user_id=int(payload["u"]),
            event=str(payload["e"]),
        )
        expires = int(payload["x"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadLink from None
    if now.timestamp() > expires:
        raise ExpiredLink
    return claim


def decision_links(email: OutgoingEmail, *, now: datetime) -> list[dict[str, Any]]:
    """The links of a task e-mail (none for other kinds, or when the task has closed)."""
    task = email.task
    if email.kind not in DECIDING_KINDS or task is None or not task.is_live:
        return []
    from approvals.integrations.email.render import task_events

    expires = moment(now + timedelta(hours=settings.EMAIL_LINK_HOURS))
    return [
        {
            "event": event,
            "label": event_label(event),
            "url": absolute(
                reverse("email_decide", args=[make_token(email=email, event=event, now=now)])
            ),
            "expires": expires,
        }
        for event in LINK_EVENTS
        if event in task_events(task)
    ]
