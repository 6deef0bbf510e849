"""The people who can be chosen: for a delegation, a reassignment, cover while someone is
away, an API token. One queryset, so that every place a person is picked agrees.

Not among them: inactive accounts, and django-guardian's anonymous user, a row guardian keeps
so that permissions can be given to visitors who are not signed in. It is an active user in
the database but nobody can sign in as it; work handed to it would be lost.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat, Lower
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


def find_person(text: str, people: QuerySet[User] | None = None) -> tuple[User | None, list[User]]:
    """The one person `text` names, as a picker submits it or a person types it: a username,
    a full name ("Bob Baker"), or a first or last name that only one person has ("Carol").
    (None, the people it could be) when it names nobody or several."""
    text = " ".join(str(text or "").split())
    people = choosable_people() if people is None else people
    if not text:
        return None, []
    by_username = people.filter(username__iexact=text).first()
    if by_username is not None:
        return by_username, [by_username]
    full_name = Lower(Concat("first_name", Value(" "), "last_name"))
    for match in (
        Q(whole_name=text.lower()),
        Q(first_name__iexact=text) | Q(last_name__iexact=text),
    ):
        found = list(
            people.annotate(whole_name=full_name)
            .filter(match)
            .order_by("first_name", "last_name", "username")[:6]
        )
        if len(found) == 1:
            return found[0], found
        if found:
            return None, found
    return None, []


def person_problem(text: str, candidates: list[User]) -> str:
    """Why `text` chose nobody, for the field's error."""
    if not candidates:
        return f"No active user '{text}'. Choose a name from the suggestions."
    names = ", ".join(f"{person} ({person.username})" for person in candidates[:5])
    return f"Several people match '{text}': {names}. Type the username or the full name."
