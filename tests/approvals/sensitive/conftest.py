from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from approvals.models import AuditEvent, OutboxMessage, WorkflowInstance
from approvals.services.instances import instance_start
from tests.approvals.api.conftest import api  # noqa: F401
from tests.approvals.flows import NOW, publish
from tests.approvals.sensitive.flows import IBAN, payment_flow


@pytest.fixture
def payment(requester: Any, reviewer: Any) -> WorkflowInstance:
    """Rita asks to pay a German account: it waits at the check, for a manager (Rob)."""
    publish(payment_flow())
    return instance_start(
        definition_key="payment",
        context={"title": "Desk supplier", "amount": 1200, "iban": IBAN},
        actor=requester,
        now=NOW,
    )


def stored(instance: WorkflowInstance) -> str:
    """Everything the database holds of a request, as text: its row, its audit events and
    its outbox messages, read with raw SQL (nothing of the model decrypts it)."""
    tables = [
        (WorkflowInstance._meta.db_table, "id"),
        (AuditEvent._meta.db_table, "instance_id"),
        (OutboxMessage._meta.db_table, "instance_id"),
    ]
    rows = []
    with connection.cursor() as cursor:
        for table, column in tables:
            cursor.execute(f"SELECT * FROM {table} WHERE {column} = %s", [instance.pk])
            rows += [str(row) for row in cursor.fetchall()]
    return "\n".join(rows)


def raw_context(instance: WorkflowInstance) -> dict[str, Any]:
    import json

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT context FROM {WorkflowInstance._meta.db_table} WHERE id = %s", [instance.pk]
        )
        (value,) = cursor.fetchone()
    return json.loads(value) if isinstance(value, str) else value
