"""The migration that makes a business key unique per workflow keeps every request: the
oldest keeps a shared reference, each later one gets its own request number after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("approvals", "0009_withdrawn_status_and_step_attempts")]
AFTER = [("approvals", "0011_business_key_per_workflow_and_inbox_columns")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _back_to_the_latest_migrations():
    """The tests after this one, on the same database, need every later migration too."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_shared_references_are_parted_and_workflow_keys_copied():
    apps = migrate(BEFORE)
    try:
        User = apps.get_model("accounts", "User")
        Definition = apps.get_model("approvals", "WorkflowDefinition")
        Instance = apps.get_model("approvals", "WorkflowInstance")
        user = User.objects.create(username="rita")
        v1 = Definition.objects.create(
            key="po", version=1, title="PO", initial="a", status="retired"
        )
        v2 = Definition.objects.create(key="po", version=2, title="PO", initial="a")
        other = Definition.objects.create(key="access", version=1, title="A", initial="a")
        at = datetime(2026, 11, 1, tzinfo=UTC)

        def make(definition, key, minutes):
            when = at + timedelta(minutes=minutes)
            return Instance.objects.create(
                definition=definition,
                requester=user,
                title="t",
                business_key=key,
                state="a",
                created_at=when,
                updated_at=when,
            ).pk

        first = make(v1, "PO-API-1", 0)
        second = make(v1, "PO-API-1", 1)
        apps.get_model("approvals", "Task").objects.create(
            instance_id=second, state="a", visit=1, label="Approve", created_at=at
        )
        third = make(v2, "PO-API-1", 2)
        elsewhere = make(other, "PO-API-1", 3)
        blank = [make(v1, "", 4), make(v1, "", 5)]
    finally:
        apps = migrate(AFTER)
    Instance = apps.get_model("approvals", "WorkflowInstance")
    rows = dict(Instance.objects.values_list("pk", "business_key"))
    assert rows[first] == "PO-API-1" and rows[elsewhere] == "PO-API-1"
    assert rows[second] == f"PO-API-1 (#{second})" and rows[third] == f"PO-API-1 (#{third})"
    assert [rows[pk] for pk in blank] == ["", ""]
    keys = dict(Instance.objects.values_list("pk", "workflow_key"))
    assert keys[first] == keys[third] == "po" and keys[elsewhere] == "access"
    Task = apps.get_model("approvals", "Task")
    assert Task.objects.get(instance_id=second).search_text == f"t\npo-api-1 (#{second})\napprove"
