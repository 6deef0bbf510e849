from __future__ import annotations

import pytest

from tests.approvals.api.conftest import _fresh_throttle_counts, api  # noqa: F401
from tests.approvals.flows import publish
from tests.approvals.subflows.flows import child_flow, parent_flow
from tests.factories import GroupFactory, UserFactory


@pytest.fixture
def buyer(reviewer):
    """Two published workflows (purchase starts vendor-onboarding), the parent's requester;
    `reviewer` is a manager."""
    GroupFactory(name="procurement")
    GroupFactory(name="operator")
    publish(child_flow())
    publish(parent_flow())
    return UserFactory(username="bea")


@pytest.fixture
def clerk(db):
    """A procurement member: decides the child."""
    return UserFactory(username="pat", groups=[GroupFactory(name="procurement")])
