"""The people who can be chosen for work: active accounts, never guardian's anonymous user."""

from __future__ import annotations

import pytest

from accounts.people import choosable_people, is_choosable

pytestmark = pytest.mark.django_db


def test_choosable_people_are_the_active_accounts_but_guardians_anonymous_user(
    reviewer, outsider, anonymous
):
    assert anonymous.is_active  # a real row, active: hence the explicit exclusion
    outsider.is_active = False
    outsider.save()
    people = set(choosable_people())
    assert reviewer in people
    assert outsider not in people and anonymous not in people
    assert is_choosable(reviewer)
    assert not is_choosable(outsider) and not is_choosable(anonymous) and not is_choosable(None)
