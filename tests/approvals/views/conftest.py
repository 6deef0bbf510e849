from __future__ import annotations

from typing import Any

import pytest

from approvals.models import AuditEvent, Decision, Task, WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow


@pytest.fixture
def review(db: None) -> Any:
    """The review flow published (manager decides; requester answers changes)."""
    return publish(review_flow())


def start(requester: Any, title: str = "Laptop", amount: float = 1200, **context: Any) -> Any:
    return instance_start(
        definition_key="review",
        context={"title": title, "amount": amount, **context},
        actor=requester,
        now=NOW,
    )


def snapshot() -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    return (
        AuditEvent.objects.count(),
        Decision.objects.count(),
        sorted(Task.objects.values_list("pk", "status", "assignee_id")),
        sorted(WorkflowInstance.objects.values_list("pk", "state", "status", "version")),
    )
