"""The people who can be chosen for work: active accounts, never guardian's anonymous user."""

from __future__ import annotations

import pytest

from accounts.people import choosable_people, find_person, is_choosable, person_problem

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


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("carol", "carol"),
        ("CAROL", "carol"),
        ("Carol", "carol"),  # her first name, and nobody else's
        ("Bob Baker", "bob"),
        ("  bob   baker ", "bob"),
        ("Chen", "carol"),  # a last name only she has
        ("bob2", "bob2"),
    ],
)
def test_a_person_is_found_by_username_full_name_or_a_name_only_they_have(text, found):
    from tests.factories import UserFactory

    UserFactory(username="carol", first_name="Carol", last_name="Chen")
    UserFactory(username="bob", first_name="Bob", last_name="Baker")
    UserFactory(username="bob2", first_name="Bob", last_name="Brown")
    person, _ = find_person(text)
    assert person is not None and person.username == found


def test_a_name_several_have_or_nobody_has_finds_no_one_and_says_why(anonymous):
    from tests.factories import UserFactory

    UserFactory(username="bbaker", first_name="Bob", last_name="Baker")
    UserFactory(username="bbrown", first_name="Bob", last_name="Brown")
    UserFactory(username="gone", first_name="Gus", last_name="Gone", is_active=False)
    person, candidates = find_person("Bob")
    assert person is None and [p.username for p in candidates] == ["bbaker", "bbrown"]
    assert person_problem("Bob", candidates) == (
        "Several people match 'Bob': Bob Baker (bbaker), Bob Brown (bbrown). "
        "Type the username or the full name."
    )
    for text in ("Gus Gone", "gone", "AnonymousUser", "Bo", "", "   "):
        assert find_person(text) == (None, [])
    assert person_problem("Bo", []) == "No active user 'Bo'. Choose a name from the suggestions."
