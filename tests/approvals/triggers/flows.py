"""Workflows started by triggers: a weekly report (a schedule), an order (an inbound hook
starts it, another moves it), and research whose approval starts drafting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from approvals.automation.triggers import completion_start_execute
from approvals.models import OutboxMessage, OutboxStatus
from approvals.services.automated_steps import NOT_DUE

# A Monday, 07:00 UTC (08:00 in Paris).
MONDAY_8_PARIS = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)


def report_flow(*schedule: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": "weekly-report",
        "title": "Weekly report",
        "initial": "review",
        "form": {
            "type": "object",
            "required": ["team"],
            "properties": {"team": {"type": "string"}},
        },
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "done"},
            },
            "done": {"type": "final"},
        },
        "schedule": list(schedule)
        or [{"cron": "0 8 * * MON", "tz": "Europe/Paris", "context": {"team": "ops"}}],
        **extra,
    }


def order_flow() -> dict[str, Any]:
    return {
        "id": "order",
        "title": "Order",
        "initial": "awaiting_payment",
        "form": {
            "type": "object",
            "required": ["customer", "amount"],
            "properties": {"customer": {"type": "string"}, "amount": {"type": "number"}},
        },
        "states": {
            "awaiting_payment": {
                "on": {"PAID": {"target": "paid", "assign": {"paid": "event.amount"}}}
            },
            "paid": {"type": "final"},
        },
    }


def research_flow(**trigger: Any) -> dict[str, Any]:
    return {
        "id": "research",
        "title": "Research",
        "initial": "review",
        "form": {
            "type": "object",
            "required": ["topic"],
            "properties": {"topic": {"type": "string"}},
        },
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {
                "type": "final",
                "on_complete_start": trigger
                or {"workflow": "drafting", "input": {"subject": "topic + ' (draft)'"}},
            },
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def drafting_flow() -> dict[str, Any]:
    return {
        "id": "drafting",
        "title": "Drafting",
        "initial": "write",
        "form": {
            "type": "object",
            "required": ["subject"],
            "properties": {"subject": {"type": "string"}},
            "additionalProperties": False,
        },
        "states": {
            "write": {"meta": {"task": {"requester": True}}, "on": {"SUBMIT": "done"}},
            "done": {"type": "final"},
        },
    }


def deliver_completion_starts(at: datetime) -> list[str]:
    """Deliver every pending completion-trigger message, as the worker does after commit."""
    outcomes = []
    while True:
        message = (
            OutboxMessage.objects.filter(
                status=OutboxStatus.PENDING, topic="trigger.complete_start"
            )
            .order_by("pk")
            .first()
        )
        if message is None:
            return outcomes
        outcome = completion_start_execute(message_id=message.pk, now=at)
        outcomes.append(outcome)
        if outcome == NOT_DUE:
            return outcomes  # claimed by another delivery: leave it to that one
