from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from accounts.models import User
from tests.factories import UserFactory


@pytest.fixture
def owner(db: None) -> User:
    """A process owner: may see the insights, and nothing else special."""
    user = UserFactory(username="olga", first_name="Olga", last_name="Owner")
    user.user_permissions.add(Permission.objects.get(codename="view_insights"))
    return user
