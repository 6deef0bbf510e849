"""A parent (purchase) whose first step starts a child request (vendor onboarding)."""

from __future__ import annotations

from typing import Any

from approvals.automation.subflows import subflow_execute
from approvals.models import OutboxMessage, OutboxStatus, Task, WorkflowInstance
from tests.approvals.flows import NOW


def child_flow(**extra: Any) -> dict[str, Any]:
    """vendor-onboarding: procurement approves (output vendor_id) or rejects."""
    return {
        "id": "vendor-onboarding",
        "title": "Vendor onboarding",
        "initial": "check",
        "form": {
            "type": "object",
            "required": ["vendor"],
            "properties": {
                "vendor": {"type": "string"},
                "country": {"type": "string", "default": "FR"},
            },
            "additionalProperties": False,
        },
        "states": {
            "check": {
                "meta": {"task": {"roles": ["procurement"]}},
                "on": {"APPROVE": "onboarded", "REJECT": "refused"},
            },
            "onboarded": {
                "type": "final",
                "meta": {"output": {"vendor_id": "'V-' + vendor", "country": "country"}},
            },
            "refused": {"type": "final", "meta": {"outcome": "rejected"}},
        },
        **extra,
    }


def parent_flow(invoke: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """purchase: onboard the vendor (a child request), then a manager approves the order."""
    return {
        "id": "purchase",
        "title": "Purchase",
        "initial": "onboard",
        "form": {
            "type": "object",
            "required": ["vendor_name", "amount"],
            "properties": {"vendor_name": {"type": "string"}, "amount": {"type": "number"}},
        },
        "states": {
            "onboard": {
                "invoke": invoke
                or {
                    "src": "workflow:vendor-onboarding",
                    "input": {"vendor": "vendor_name"},
                    "onDone": {
                        "target": "review",
                        "assign": {"vendor_id": "event.output.vendor_id"},
                    },
                    "onError": "no_vendor",
                },
                "on": {"CANCEL": "dropped"},
            },
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {"APPROVE": "approved", "REJECT": "rejected"},
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
            "no_vendor": {"type": "final", "meta": {"outcome": "rejected"}},
            "dropped": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
        **extra,
    }


def deliver_all(at=NOW) -> list[str]:
    """Deliver every pending sub-workflow message, as the worker would after each commit,
    until none is left (a child's end may be written by the delivery of another)."""
    outcomes = []
    while True:
        pending = OutboxMessage.objects.filter(
            status=OutboxStatus.PENDING, topic__in=("subflow.start", "subflow.ended")
        ).order_by("pk")
        message = pending.first()
        if message is None:
            return outcomes
        outcomes.append(subflow_execute(message_id=message.pk, now=at))


def child_of(parent: WorkflowInstance) -> WorkflowInstance:
    return WorkflowInstance.objects.get(parent=parent)


def open_task(instance: WorkflowInstance) -> Task:
    return Task.objects.get(instance=instance, status__in=("open", "claimed"))
