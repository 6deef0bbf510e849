"""Block Kit for Signoff's Slack messages. Every message links to the task page (absolute, from
SITE_URL); a GET there only shows the page, deciding is a POST on the page or a signed button."""

from __future__ import annotations

import json
from typing import Any

from approvals.links import absolute, request_path, task_path
from approvals.models import NotificationKind, SlackMessage, Task
from approvals.services.definitions import statechart_for
from approvals.services.task_work import EVENTS_NEEDING_COMMENT

DECIDE_ACTION = "signoff_decide"
OPEN_ACTION = "signoff_open"
COMMENT_CALLBACK = "signoff_comment"
# Slack shows at most this many buttons in one actions block comfortably.
MAX_BUTTONS = 4
BUTTON_LABELS = {"APPROVE": "Approve", "REJECT": "Reject", "REQUEST_CHANGES": "Request changes"}
HEADINGS = {
    NotificationKind.TASK_NEW: "New task",
    NotificationKind.TASK_DELEGATED: "Delegated to you",
    NotificationKind.REMINDER: "Reminder",
    NotificationKind.ESCALATION: "Escalated",
    NotificationKind.DECISION: "Decision on your request",
    NotificationKind.COMPLETED: "Your request",
    NotificationKind.MENTION: "Mentioned",
    NotificationKind.QUESTION: "Question for you",
    NotificationKind.COMMENT: "Comment on your request",
}


def event_label(event: str) -> str:
    return BUTTON_LABELS.get(event, event.replace("_", " ").capitalize())


def decision_events(task: Task) -> list[str]:
    """The events a person can choose on this task (its state's `on`), in definition order."""
    chart = statechart_for(task.instance.definition)
    return list(chart.state(task.state).on)[:MAX_BUTTONS]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_blocks(message: SlackMessage) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a stored message, from the current rows."""
    instance = message.instance
    task = message.task
    url = absolute(task_path(task.pk) if task else request_path(instance.pk))
    heading = HEADINGS.get(message.kind, "Signoff")
    text = message.text
    link = f"<{url}|{_escape(message.text)}>"
    fields = [
        {"type": "mrkdwn", "text": f"*Workflow*\n{_escape(instance.definition.name)}"},
        {"type": "mrkdwn", "text": f"*Requested by*\n{_escape(str(instance.requester))}"},
    ]
    if task is not None and task.due_at:
        # Slack shows the date in the reader's time zone; the fallback is UTC.
        stamp = int(task.due_at.timestamp())
        fallback = f"{task.due_at:%Y-%m-%d %H:%M} UTC"
        due = f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>"
        fields.append({"type": "mrkdwn", "text": f"*Due*\n{due}"})
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n{link}"}},
        {"type": "section", "fields": fields},
    ]
    elements: list[dict[str, Any]] = []
    actionable = message.kind in (
        NotificationKind.TASK_NEW,
        NotificationKind.TASK_DELEGATED,
        NotificationKind.REMINDER,
        NotificationKind.ESCALATION,
    )
    if task is not None and actionable and task.is_live:
        for event in decision_events(task):
            button: dict[str, Any] = {
                "type": "button",
                "action_id": f"{DECIDE_ACTION}:{event}",
                "text": {"type": "plain_text", "text": event_label(event)},
                "value": json.dumps({"task": task.pk, "event": event}),
            }
            if event == "APPROVE":
                button["style"] = "primary"
            elif event == "REJECT":
                button["style"] = "danger"
            elements.append(button)
    elements.append(
        {
            "type": "button",
            "action_id": OPEN_ACTION,
            "text": {"type": "plain_text", "text": "Open in Signoff"},
            "url": url,
        }
    )
    block_id = f"task-{task.pk}" if task is not None else f"request-{instance.pk}"
    blocks.append({"type": "actions", "block_id": block_id, "elements": elements})
    return text, blocks


def outcome_blocks(
    original: list[dict[str, Any]] | None, *, text: str, ok: bool
) -> list[dict[str, Any]]:
    """The message after a button: its content without the buttons, and what happened."""
    kept = [b for b in (original or []) if b.get("type") != "actions"]
    mark = "✅" if ok else "⚠️"
    note = {"type": "mrkdwn", "text": f"{mark} {_escape(text)}"}
    return [*kept, {"type": "context", "elements": [note]}]


def comment_modal(*, task_id: int, event: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Rejecting or asking for changes needs a reason: Slack asks for it in a modal."""
    return {
        "type": "modal",
        "callback_id": COMMENT_CALLBACK,
        "private_metadata": json.dumps({**metadata, "task": task_id, "event": event}),
        "title": {"type": "plain_text", "text": event_label(event)[:24]},
        "submit": {"type": "plain_text", "text": event_label(event)[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "comment",
                "label": {"type": "plain_text", "text": "Say why (the requester sees this)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "comment",
                    "multiline": True,
                    "max_length": 3000,
                },
            }
        ],
    }


def needs_comment(event: str) -> bool:
    return event in EVENTS_NEEDING_COMMENT
