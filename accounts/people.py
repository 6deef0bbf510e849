"""The people who can be chosen: for a delegation, a reassignment, cover while someone is
away, an API token. One queryset, so that every place a person is picked agrees.

Not among them: inactive accounts, and django-guardian's anonymous user, a row guardian keeps
so that permissions can be given to visitors who are not signed in. It is an active user in
the database but nobody can sign in as it; work handed to it would be lost.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from guardian.conf import settings as guardian_settings

from accounts.models import User


def choosable_people() -> QuerySet[User]:
    people = User.objects.filter(is_active=True)
    anonymous = guardian_settings.ANONYMOUS_USER_NAME
    if anonymous is not None:
        people = people.exclude(username=anonymous)
    return people


def is_choosable(user: Any) -> bool:
    return (
        user is not None
        and getattr(user, "pk", None) is not None
        and bool(user.is_active)
        and user.get_username() != guardian_settings.ANONYMOUS_USER_NAME
    )
