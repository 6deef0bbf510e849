"""An OutgoingEmail as a message: subject, text and HTML parts from templates, and the headers
that thread every message about one request into one conversation.

Rendered when it is sent (from the rows as they are then, in the reader's time zone), never
in the transaction that wrote it. The HTML part needs no image and no stylesheet: a client that
blocks both shows the same words and the same plain link to the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone

from approvals.formatting import MONEY_NAMES, field_value, moment
from approvals.integrations.email import replies
from approvals.integrations.email.models import OutgoingEmail
from approvals.links import absolute, task_path
from approvals.models import NotificationKind, Task, WorkflowInstance
from approvals.sensitive import MASK, masked_for
from approvals.services.definitions import statechart_for

SUBJECT_PREFIX = "[Signoff]"
# How a task's subject starts, by the kind of notification.
TASK_SUBJECT_LEADS = {
    NotificationKind.TASK_NEW: "",
    NotificationKind.TASK_DELEGATED: "Delegated to you — ",
    NotificationKind.REMINDER: "Reminder — ",
    NotificationKind.ESCALATION: "Escalated — ",
}
HEADINGS = {
    NotificationKind.TASK_NEW: "A task for you",
    NotificationKind.TASK_CLAIMED: "Taken by someone else",
    NotificationKind.TASK_DELEGATED: "Delegated to you",
    NotificationKind.REMINDER: "Reminder",
    NotificationKind.ESCALATION: "Escalated to you",
    NotificationKind.DECISION: "A decision on your request",
    NotificationKind.COMPLETED: "Your request is finished",
}
# Fields shown in the message, at most (the task page has them all).
MAX_FIELDS = 8
DUE_FORMAT = "D j M"


def mail_domain() -> str:
    """The right-hand side of our Message-IDs: the site's host."""
    return urlsplit(settings.SITE_URL).hostname or "signoff.invalid"


def thread_id(instance_id: int) -> str:
    """The one id every message about a request refers to, as GitHub's notifications do: the
    readers' clients group them under it (never itself sent)."""
    return f"<request-{instance_id}@{mail_domain()}>"


def _zone(user: Any) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def key_facts(instance: WorkflowInstance) -> str:
    """What says the most in few words: the request's amount ("15,000 EUR"), else the first
    of its inbox columns."""
    form = instance.definition.form_schema or {}
    properties = form.get("properties") or {}
    context = masked_for(instance.definition, instance.context or {})
    names = [n for n in properties if MONEY_NAMES.search(n) and n in context]
    names += [n for n in instance.definition.inbox_columns or [] if n in context]
    for name in names:
        shown = field_value(name, context[name], form, context)
        if shown and shown != MASK:
            return shown
    return ""


def fields(instance: WorkflowInstance) -> list[tuple[str, str]]:
    """(title, value) of the request's filled-in fields, in the form's order."""
    form = instance.definition.form_schema or {}
    properties = form.get("properties") or {}
    context = masked_for(instance.definition, instance.context or {})
    shown: list[tuple[str, str]] = []
    for name, prop in properties.items():
        if not isinstance(prop, Mapping) or prop.get("readOnly") or name not in context:
            continue
        value = field_value(name, context[name], form, context)
        if value:
            shown.append((str(prop.get("title") or name.replace("_", " ").capitalize()), value))
    return shown[:MAX_FIELDS]


def is_task_mail(email: OutgoingEmail) -> bool:
    return email.kind in TASK_SUBJECT_LEADS and email.task_id is not None


def task_events(task: Task) -> list[str]:
    """The events the task's step offers, in the definition's order."""
    return list(statechart_for(task.instance.definition).state(task.state).on)


def task_verb(task: Task) -> str:
    """'Approve' for a step that is approved, else the step's own name ('Resubmit request')."""
    return "Approve" if "APPROVE" in task_events(task) else (task.label or task.state)


def subject(email: OutgoingEmail, *, text: str) -> str:
    """`[Signoff] Approve: Standing desks (15,000 EUR) — due Fri 4 Dec` for a task (in the
    reader's zone); the notification's own words for the rest."""
    instance = email.instance
    if is_task_mail(email) and instance is not None:
        task = email.task
        facts = key_facts(instance)
        words = f"{TASK_SUBJECT_LEADS[email.kind]}{task_verb(task)}: {instance.title}"
        if facts:
            words += f" ({facts})"
        if task.due_at:
            words += f" — due {dateformat.format(timezone.localtime(task.due_at), DUE_FORMAT)}"
    else:
        words = text.replace("“", "").replace("”", "")
    return f"{SUBJECT_PREFIX} {words}"[:300]


def context(email: OutgoingEmail, *, text: str, decide: list[dict[str, str]]) -> dict[str, Any]:
    instance = email.instance
    task = email.task
    # The task while it waits for someone; once closed, the request it belonged to.
    if task is not None and task.is_live:
        url = absolute(task_path(task.pk))
    elif instance is not None:
        url = absolute(reverse("request", args=[instance.pk]))
    else:
        url = settings.SITE_URL + "/"
    return {
        "email": email,
        "heading": HEADINGS.get(email.kind, "Signoff"),
        "text": text,
        "instance": instance,
        "workflow": instance.definition.title if instance else "",
        "requester": str(instance.requester) if instance else "",
        "fields": fields(instance) if instance else [],
        "due": moment(task.due_at) if task is not None and task.due_at else "",
        "url": url,
        "decide": decide,
        "preferences_url": preferences_url(),
        "site_url": settings.SITE_URL,
        # A reply is posted as a comment on the request (replies.py), where that is on.
        "replies_comment": replies.enabled() and instance is not None,
    }


def preferences_url() -> str:
    return absolute(reverse("notification_preferences"))


def build(
    email: OutgoingEmail,
    *,
    text: str,
    decide: list[dict[str, str]] | None = None,
    now: datetime,
    connection: Any = None,
) -> EmailMultiAlternatives:
    """The message for one row, in its reader's time zone."""
    with timezone.override(_zone(email.recipient)):
        title = subject(email, text=text)
        values = context(email, text=text, decide=decide or [])
        body = render_to_string("email/notification.txt", values)
        html = render_to_string("email/notification.html", values)
    headers = {
        "Message-ID": f"<{email.message_id}>",
        "List-Unsubscribe": f"<{values['preferences_url']}>",
        # RFC 3834: no out-of-office answers to a machine.
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
    }
    if email.instance_id:
        headers["In-Reply-To"] = thread_id(email.instance_id)
        headers["References"] = thread_id(email.instance_id)
    reply_to = (
        [replies.reply_address(email.instance_id, email.recipient_id)]
        if values["replies_comment"]
        else None
    )
    message = EmailMultiAlternatives(
        subject=title,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers=headers,
        reply_to=reply_to,
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    return message


# ----- digests

# Kinds a digest lists as waiting for the reader while their task is open, and as news about
# the reader's own requests.
WAITING_KINDS = frozenset(TASK_SUBJECT_LEADS)
NEWS_KINDS = frozenset({NotificationKind.DECISION, NotificationKind.COMPLETED})


def digest_sections(
    items: list[OutgoingEmail],
) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[dict[str, Any]]]:
    """(waiting: [(workflow, tasks oldest first)], news about my requests, oldest first). A task
    that closed since, and a task told of twice (new, then reminded), are listed once or not."""
    waiting: dict[str, list[dict[str, Any]]] = {}
    seen: set[int] = set()
    for item in sorted(items, key=lambda i: (i.task.created_at if i.task else i.created_at, i.pk)):
        task = item.task
        if item.kind not in WAITING_KINDS or task is None or not task.is_live or task.pk in seen:
            continue
        seen.add(task.pk)
        waiting.setdefault(task.instance.definition.title, []).append(
            {
                "title": task.instance.title,
                "step": task.label or task.state,
                "facts": key_facts(task.instance),
                "due": moment(task.due_at) if task.due_at else "",
                "since": moment(task.created_at),
                "url": absolute(task_path(task.pk)),
            }
        )
    news = [
        {
            "text": item.notification.text if item.notification else "",
            "at": moment(item.created_at),
            "url": absolute(reverse("request", args=[item.instance_id])),
        }
        for item in sorted(items, key=lambda i: (i.created_at, i.pk))
        if item.kind in NEWS_KINDS and item.instance_id is not None
    ]
    return sorted(waiting.items()), news


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def build_digest(
    email: OutgoingEmail, *, items: list[OutgoingEmail], connection: Any = None
) -> EmailMultiAlternatives:
    with timezone.override(_zone(email.recipient)):
        waiting, news = digest_sections(items)
        tasks = sum(len(group) for _, group in waiting)
        said = [
            part
            for part in (
                _count(tasks, "task waiting", "tasks waiting") if tasks else "",
                _count(len(news), "update on your requests", "updates on your requests")
                if news
                else "",
            )
            if part
        ]
        title = f"{SUBJECT_PREFIX} Digest: {', '.join(said) or 'nothing new'}"
        values = {
            "waiting": waiting,
            "news": news,
            "inbox_url": absolute(reverse("inbox")),
            "preferences_url": preferences_url(),
            "site_url": settings.SITE_URL,
        }
        body = render_to_string("email/digest.txt", values)
        html = render_to_string("email/digest.html", values)
    message = EmailMultiAlternatives(
        subject=title,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers={
            "Message-ID": f"<{email.message_id}>",
            "List-Unsubscribe": f"<{values['preferences_url']}>",
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "All",
        },
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    return message
