from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from accounts.models import User
from tests.factories import GroupFactory, UserFactory


@pytest.fixture
def reviewer2(db: None) -> User:
    return UserFactory(
        username="mia", first_name="Mia", last_name="Manager", groups=[GroupFactory(name="manager")]
    )


@pytest.fixture
def finance(db: None) -> User:
    return UserFactory(
        username="fred",
        first_name="Fred",
        last_name="Finance",
        groups=[GroupFactory(name="finance")],
    )


@pytest.fixture
def security(db: None) -> User:
    return UserFactory(
        username="sam",
        first_name="Sam",
        last_name="Security",
        groups=[GroupFactory(name="security")],
    )


@pytest.fixture
def operator(db: None) -> User:
    """An operator: may cancel requests, reassign tasks and send external events."""
    user = UserFactory(
        username="opal",
        first_name="Opal",
        last_name="Operator",
        groups=[GroupFactory(name="operator")],
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["cancel_instance", "reassign_task", "send_event"])
    )
    return user
