"""E-mail delivery, through the outbox's one retry implementation.

`email_messages_send` sends stored OutgoingEmail rows (written with their notifications in the
transaction of the change) over one connection of Django's configured e-mail backend. Each
row is claimed first (`EMAILS.claim`), so a duplicate dispatch sends nothing twice. A transient
failure (the server unreachable or disconnecting, a 4xx answer) puts the row back with backoff
for the sweep; a permanent one (a 5xx answer: no such mailbox, relaying refused) fails it at
once, with the server's words, for the admin to read and send again.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Q

from approvals.integrations.email import replies
from approvals.integrations.email.links import LinkClaim, decision_links
from approvals.integrations.email.models import DIGEST_KIND, EmailStatus, OutgoingEmail
from approvals.integrations.email.render import build, build_digest
from approvals.models import Channel, Comment
from approvals.outbox import retry
from approvals.outbox.dispatch import queue_after_commit
from approvals.services.discussion import comment_add
from approvals.services.errors import Conflict, InvalidInput, NotAllowed
from approvals.services.task_work import DecisionResult, task_decide

logger = logging.getLogger(__name__)

# Sent messages are marked so every this many (a worker that dies sends at most these again).
FLUSH_EVERY = 10
DIGEST_ITEM_RELATIONS = ("notification", "task__instance__definition", "instance__definition")

SEND_TASK = "approvals.tasks.email_send"
# A message left "sending" this long by a worker that died is tried again.
LEASE = timedelta(minutes=5)
BACKOFF = retry.Backoff(base=30, factor=2, cap=3600, jitter=True)

EMAILS = retry.register(
    retry.RetryQueue(
        name="email",
        model=OutgoingEmail,
        task=SEND_TASK,
        live=Q(status__in=[EmailStatus.PENDING, EmailStatus.SENDING]),
        due_field="next_attempt_at",
        lease=LEASE.total_seconds,
        on_claim=lambda now: {"status": EmailStatus.SENDING, "claimed_at": now},
    )
)


def failure(exc: Exception) -> tuple[str, bool]:
    """(what went wrong, whether trying again may help)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        words = "; ".join(
            f"{code} {reason.decode(errors='replace') if isinstance(reason, bytes) else reason}"
            for code, reason in exc.recipients.values()
        )
        return f"the server refused the recipient: {words}", any(c < 500 for c in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        reason = exc.smtp_error
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        return f"the server answered {exc.smtp_code} {reason}", exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server hung up: {exc}", True
    return f"could not send: {exc.__class__.__name__}: {exc}", True


def email_messages_send(*, ids: Iterable[int], now: datetime) -> dict[int, float | None]:
    """Send these rows. Returns, for each row this call attempted, the seconds before its next
    try (None: sent, failed for good, or skipped). Rows another worker holds, or already sent,
    are left alone and not in the answer."""
    ids = list(ids)
    claimed = (
        [pk for pk in ids if EMAILS.claim(pk, now=now)]
        if len(ids) == 1
        else EMAILS.claim_many(ids, now=now)
    )
    if not claimed:
        return {}
    rows = OutgoingEmail.objects.filter(pk__in=claimed).select_related(
        "recipient",
        "notification",
        "task__instance__definition",
        "instance__definition",
        "instance__requester",
    )
    outcome: dict[int, float | None] = {}
    connection = get_connection(fail_silently=False)
    sent: list[OutgoingEmail] = []
    try:
        for email in rows.order_by("pk"):
            outcome[email.pk] = _send_one(email, connection, now=now, sent=sent)
            if len(sent) >= FLUSH_EVERY:
                _mark_sent(sent)
    finally:
        _mark_sent(sent)
        try:
            connection.close()
        except Exception:  # closing a broken connection tells us nothing new
            logger.debug("closing the e-mail connection failed", exc_info=True)
    return outcome


def _mark_sent(sent: list[OutgoingEmail]) -> None:
    """The messages the server accepted, in one statement."""
    if sent:
        OutgoingEmail.objects.bulk_update(sent, ["status", "last_error", "sent_at", "subject"])
        sent.clear()


def _send_one(
    email: OutgoingEmail, connection: Any, *, now: datetime, sent: list[OutgoingEmail]
) -> float | None:
    if not email.recipient.is_active or not email.recipient.email:
        _finish(email, EmailStatus.SKIPPED, error="the recipient has no active address")
        return None
    text = email.notification.text if email.notification else email.subject
    try:
        if email.kind == DIGEST_KIND:
            items = list(email.items.select_related(*DIGEST_ITEM_RELATIONS).order_by("pk"))
            message = build_digest(email, items=items, connection=connection)
        else:
            message = build(
                email,
                text=text,
                decide=decision_links(email, now=now),
                now=now,
                connection=connection,
            )
        email.subject = message.subject
        # Opened once for the batch (open() does nothing on an open connection), again after
        # a failure closed it.
        connection.open()
        message.send()
    except Exception as exc:
        error, transient = failure(exc)
        if not isinstance(exc, smtplib.SMTPResponseException):
            # A broken connection is opened again for the next message.
            try:
                connection.close()
            except Exception:
                logger.debug("closing a broken e-mail connection failed", exc_info=True)
        if not transient or email.attempts >= settings.EMAIL_MAX_ATTEMPTS:
            _finish(email, EmailStatus.FAILED, error=error)
            logger.warning("e-mail %s to %s failed for good: %s", email.pk, email.to, error)
            return None
        delay = BACKOFF.seconds(email.attempts)
        EMAILS.retry_later(
            email.pk, now=now, delay=delay, status=EmailStatus.PENDING, last_error=error[:2000]
        )
        return delay
    email.sent_at = now
    email.status = EmailStatus.SENT
    email.last_error = ""
    sent.append(email)
    return None


def _finish(email: OutgoingEmail, status: str, *, error: str) -> None:
    email.status = status
    email.last_error = error[:2000]
    email.save(update_fields=["status", "last_error", "sent_at", "subject"])


def email_retry(*, ids: list[int], now: datetime) -> int:
    """An admin sends failed messages again (after fixing an address or the server)."""
    changed = list(
        OutgoingEmail.objects.filter(pk__in=ids, status=EmailStatus.FAILED).values_list(
            "pk", flat=True
        )
    )
    OutgoingEmail.objects.filter(pk__in=changed).update(
        status=EmailStatus.PENDING, attempts=0, next_attempt_at=now, last_error=""
    )
    queue_after_commit(SEND_TASK, [(pk,) for pk in changed])
    return len(changed)


class LinkUsed(Conflict):
    """A decision link that already decided (it works once)."""


def email_link_decide(
    *, claim: LinkClaim, actor: Any, comment: str, now: datetime
) -> DecisionResult:
    """Decide a task from the confirmation page of an e-mail's link: the same service and
    permissions as the task page, channel "email". The e-mail's links are spent in the
    decision's transaction: a refused decision leaves them usable, and of two presses at once
    the second waits on the first's row lock and finds them spent."""
    if getattr(actor, "pk", None) != claim.user_id:
        raise NotAllowed("this link was sent to someone else")
    with transaction.atomic():
        spent = OutgoingEmail.objects.filter(
            pk=claim.email_id,
            recipient_id=claim.user_id,
            task_id=claim.task_id,
            link_used_at__isnull=True,
        ).update(link_used_at=now)
        if spent != 1:
            raise LinkUsed("this link was already used")
        return task_decide(
            task_id=claim.task_id,
            event=claim.event,
            actor=actor,
            comment=comment,
            now=now,
            channel=Channel.EMAIL,
        )


def comment_from_reply(*, reply: replies.Reply, now: datetime) -> Comment:
    """Post a reply by e-mail as a comment of the person the reply address was made for (the
    same message twice: the comment it made). Refused (NotAllowed) for an address we did not
    make, or a sender who is not that person; the discussion's rules do the rest."""
    claim = replies.read_address(reply.recipients)
    if claim is None:
        raise NotAllowed("this e-mail is not a reply to one of ours")
    instance_id, user_id = claim
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not user.email or user.email.lower() != reply.sender.lower():
        raise NotAllowed("this reply does not come from the address it was sent to")
    if not reply.body:
        raise InvalidInput("the reply is empty", {"body": ["Nothing to post."]})
    return comment_add(
        instance_id=instance_id,
        body=reply.body,
        actor=user,
        now=now,
        channel=Channel.EMAIL,
        email_message_id=reply.message_id,
    )
