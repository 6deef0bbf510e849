from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from approvals.models import WorkflowInstance
from tests.approvals.audit_export.conftest import (  # noqa: F401
    decided_request,
    open_request,
    public_key,
)
from tests.approvals.documents.conftest import documents_flow, media  # noqa: F401
from tests.approvals.flows import NOW, publish
from tests.factories import UserFactory

# The review workflow keeps its finished requests for 30 days.
RETENTION = "P30D"
AFTER = NOW + timedelta(days=31)


def keep_for(retention: str) -> None:
    """Publish the review workflow again, keeping its finished requests for `retention`."""
    flow = copy.deepcopy(documents_flow())
    flow["retention"] = retention
    publish(flow)


@pytest.fixture
def expired_request(decided_request: WorkflowInstance) -> WorkflowInstance:  # noqa: F811
    """The decided request (two document versions), its workflow now kept for 30 days."""
    keep_for(RETENTION)
    return finished(decided_request)


@pytest.fixture
def keeper(db: None) -> Any:
    """Someone who may place and release legal holds."""
    user = UserFactory(username="lena", first_name="Lena", last_name="Legal")
    user.user_permissions.add(Permission.objects.get(codename="hold_legal"))
    return user


def finished(instance: WorkflowInstance) -> WorkflowInstance:
    instance.refresh_from_db()
    assert instance.completed_at is not None, instance.status
    return instance
