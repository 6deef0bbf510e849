"""A small definition with a scenario of each kind, for the scenario tests."""

from __future__ import annotations

import copy
from typing import Any

from tests.approvals.flows import review_flow


def flow_with(*scenarios: dict[str, Any], **task: Any) -> dict[str, Any]:
    """The review flow (review → approved | rejected | changes → resubmit or withdraw) with a
    two-day SLA escalating to the directors, a 30-day timer on changes, and these scenarios."""
    config = copy.deepcopy(review_flow(sla="P2D", escalate_to=["director"], **task))
    config["states"]["changes"]["after"] = {"P30D": "withdrawn"}
    config["scenarios"] = list(scenarios)
    return config


APPROVED = {
    "name": "a manager approves",
    "context": {"title": "Laptop", "amount": 900},
    "steps": [{"decide": "APPROVE", "as_role": "manager"}],
    "expect": {"state": "approved", "status": "completed", "tasks": []},
}

RESUBMITTED = {
    "name": "sent back and resubmitted",
    "context": {"title": "Laptop", "amount": 900},
    "steps": [
        {"decide": "REQUEST_CHANGES", "as_role": "manager", "data": {"comment": "why?"}},
        {"decide": "RESUBMIT", "as_role": "requester"},
    ],
    "expect": {
        "state": "review",
        "context": {"revisions": 1},
        "tasks": [{"state": "review", "roles": ["manager"]}],
    },
}

WRONG = {
    "name": "expects the wrong end",
    "context": {"title": "Laptop", "amount": 900},
    "steps": [{"decide": "REJECT", "as_role": "manager"}],
    "expect": {"state": "approved"},
}
