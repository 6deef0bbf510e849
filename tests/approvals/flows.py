"""Small flows defined inline, so each test shows the process it exercises."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from approvals.models import WorkflowDefinition
from approvals.services.definitions import definition_import
from tests.factories import GroupFactory

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def review_flow(**task: Any) -> dict[str, Any]:
    """review (one manager) → approved | rejected | changes requested → resubmit or withdraw."""
    return {
        "id": "review",
        "title": "Review",
        "initial": "review",
        "form": {
            "type": "object",
            "required": ["title", "amount"],
            "properties": {
                "title": {"type": "string", "maxLength": 200},
                "amount": {"type": "number", "minimum": 0},
                "revisions": {"type": "integer", "default": 0, "readOnly": True},
            },
        },
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"], **task}},
                "on": {
                    "APPROVE": "approved",
                    "REJECT": "rejected",
                    "REQUEST_CHANGES": "changes",
                },
            },
            "changes": {
                "meta": {"task": {"requester": True}},
                "on": {
                    "RESUBMIT": {"target": "review", "assign": {"revisions": "revisions + 1"}},
                    "WITHDRAW": "withdrawn",
                },
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
            "withdrawn": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
    }


def director_flow(description: str | None = "the amount is 10,000 or more", **task: Any):
    """review_flow whose manager's APPROVE (step "Manager approval") goes on to a director
    ("Director approval") from 10,000 up, said in `description` (None: the guard alone)."""
    flow = review_flow(**task)
    flow["states"]["review"]["meta"]["label"] = "Manager approval"
    onward: dict[str, Any] = {"target": "director", "guard": "amount >= 10000"}
    if description is not None:
        onward["description"] = description
    flow["states"]["review"]["on"]["APPROVE"] = [onward, {"target": "approved"}]
    flow["states"]["director"] = {
        "meta": {"label": "Director approval", "task": {"roles": ["director"]}},
        "on": {"APPROVE": "approved", "REJECT": "rejected"},
    }
    return flow


def routed_flow() -> dict[str, Any]:
    """Small amounts go straight to finance; an event-guarded transition; a timer."""
    return {
        "id": "routed",
        "title": "Routed",
        "initial": "submitted",
        "form": {"type": "object", "properties": {"amount": {"type": "number"}}},
        "states": {
            "submitted": {
                "always": [
                    {"target": "finance", "guard": "amount < 1000"},
                    {"target": "manager"},
                ]
            },
            "manager": {
                "meta": {"task": {"roles": ["manager"], "sla": "P2D", "remind": ["P1D"]}},
                "on": {"APPROVE": "finance", "REJECT": "rejected"},
            },
            "finance": {
                "meta": {"task": {"roles": ["finance"]}},
                "on": {"APPROVE": "awaiting_payment", "REJECT": "rejected"},
            },
            "awaiting_payment": {
                "on": {
                    "PAYMENT_RECEIVED": [
                        {
                            "target": "paid",
                            "guard": "event.amount >= amount",
                            "assign": {"paid": "event.amount"},
                        },
                    ],
                },
                "after": {"P7D": "rejected"},
            },
            "paid": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def multi_flow(rule: Any, roles: list[str]) -> dict[str, Any]:
    return {
        "id": "multi",
        "title": "Multi",
        "initial": "approval",
        "states": {
            "approval": {
                "meta": {"task": {"roles": roles, "rule": rule}},
                "on": {"APPROVE": "granted", "REJECT": "denied"},
            },
            "granted": {"type": "final"},
            "denied": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def parallel_flow() -> dict[str, Any]:
    return {
        "id": "fulfil",
        "title": "Fulfil",
        "initial": "fulfillment",
        "states": {
            "fulfillment": {
                "type": "parallel",
                "states": {
                    "inventory": {
                        "initial": "picking",
                        "states": {
                            "picking": {
                                "meta": {"task": {"roles": ["warehouse"]}},
                                "on": {"PICKED": "packed"},
                            },
                            "packed": {"type": "final"},
                        },
                    },
                    "shipping": {
                        "initial": "label",
                        "states": {
                            "label": {"on": {"LABEL_CREATED": "ready"}},
                            "ready": {"type": "final"},
                        },
                    },
                },
                "onDone": "shipped",
                "on": {"CANCEL": "cancelled"},
            },
            "shipped": {"type": "final"},
            "cancelled": {"type": "final", "meta": {"outcome": "cancelled"}},
        },
    }


# Nothing is known about `items` when the definition is checked, so this passes validation;
# over 40 items it needs 40**3 inner evaluations, far over the budget.
EXPENSIVE = "items.all(a, items.all(b, items.all(c, c >= 0)))"


def guarded_flow() -> dict[str, Any]:
    """APPROVE is guarded by EXPENSIVE: over 40 items, a decision runs out of its budget."""
    return {
        "id": "guarded",
        "title": "Guarded",
        "initial": "review",
        "form": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        },
        "states": {
            "review": {
                "meta": {"task": {"roles": ["manager"]}},
                "on": {
                    "APPROVE": [{"target": "approved", "guard": EXPENSIVE}],
                    "REJECT": "rejected",
                },
            },
            "approved": {"type": "final"},
            "rejected": {"type": "final", "meta": {"outcome": "rejected"}},
        },
    }


def publish(config: dict[str, Any]) -> WorkflowDefinition:
    """Create the roles the flow names, then import and publish it."""
    config = copy.deepcopy(config)
    for role in _roles(config["states"]):
        GroupFactory(name=role)
    return definition_import(config=config, actor=None, publish=True, now=timezone.now())


def _roles(states: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for node in states.values():
        task = (node.get("meta") or {}).get("task") or {}
        found.update(task.get("roles", []))
        found.update(task.get("escalate_to", []))
        found |= _roles(node.get("states") or {})
    return found
