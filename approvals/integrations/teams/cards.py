"""Adaptive Cards for Teams: the request's facts and an "Open in Signoff" button (the deep link
to the task), in the message envelope Teams' webhooks take. Incoming webhooks cannot update a
card they posted, so a task that closes gets a follow-up card instead."""

from __future__ import annotations

from typing import Any

from approvals.formatting import moment
from approvals.integrations.email.render import HEADINGS, fields, key_facts
from approvals.integrations.teams.models import CLOSED_KIND, TeamsMessage
from approvals.links import absolute, request_path, task_path

CARD_VERSION = "1.5"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_FACTS = 8


def card(message: TeamsMessage, *, closed_note: str = "") -> dict[str, Any]:
    instance = message.instance
    task = message.task
    heading = "Closed" if message.kind == CLOSED_KIND else HEADINGS.get(message.kind, "Signoff")
    facts = [
        {"title": "Workflow", "value": instance.definition.title},
        {"title": "Requested by", "value": str(instance.requester)},
    ]
    if task is not None and task.due_at and message.kind != CLOSED_KIND:
        facts.append({"title": "Due", "value": moment(task.due_at)})
    amount = key_facts(instance)
    facts += [{"title": title, "value": value} for title, value in fields(instance)]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": heading, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": closed_note or message.text, "wrap": True},
        {
            "type": "TextBlock",
            "text": instance.title + (f" ({amount})" if amount else ""),
            "isSubtle": True,
            "wrap": True,
        },
        {"type": "FactSet", "facts": facts[:MAX_FACTS]},
    ]
    url = absolute(task_path(task.pk)) if task is not None else absolute(request_path(instance.pk))
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Signoff", "url": url}],
    }


def envelope(content: dict[str, Any]) -> dict[str, Any]:
    """The message a Teams webhook (Workflows' "post to a channel when a webhook request is
    received", or an incoming webhook) takes: one Adaptive Card attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": content,
            }
        ],
    }
