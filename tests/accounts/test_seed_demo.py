"""`manage.py seed_demo`: safe to run at every start, and demo passwords only in development.

pytest-django runs tests with DEBUG off; tests about development mode turn it on.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db.models import QuerySet
from django.test import Client

from accounts.demo import DEMO_PASSWORD, ROLES, USERS
from accounts.management.commands import seed_demo
from accounts.models import Role, User


def demo_users() -> QuerySet[User]:
    # django-guardian keeps a user of its own for anonymous permissions; it is not demo data.
    return User.objects.filter(username__in=[user.username for user in USERS])


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_running_twice_creates_nothing_twice() -> None:
    assert f"{len(USERS)} created" in seed()
    assert f"0 created, {len(USERS)} already present" in seed()
    assert User.objects.count() == len(USERS) + 1  # + guardian's anonymous user
    assert demo_users().count() == len(USERS)
    assert Group.objects.count() == len(ROLES)
    assert Role.objects.count() == len(ROLES)


@pytest.mark.django_db
def test_people_and_roles() -> None:
    seed()
    roles = {
        user.username: sorted(user.groups.values_list("name", flat=True)) for user in demo_users()
    }
    assert roles == {
        "alice": [],
        "bob": ["manager"],
        "carol": ["manager"],
        "dave": ["director"],
        "erin": ["finance"],
        "oscar": ["operator", "shipping", "warehouse"],
        "sam": ["security"],
        "tina": ["security"],
        "uma": ["security"],
        "owner": [],
        "admin": [],
    }
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert not User.objects.filter(is_staff=True).exclude(username="admin").exists()
    owner = User.objects.get(username="owner")
    assert owner.has_perm("approvals.view_insights") and not owner.is_staff
    assert User.objects.get(username="admin").has_perm("approvals.view_insights")
    assert not User.objects.get(username="bob").has_perm("approvals.view_insights")
    bob = User.objects.get(username="bob")
    assert (bob.get_full_name(), bob.email) == ("Bob Baker", "bob@example.com")
    assert Group.objects.get(name="security").role.description


@pytest.mark.django_db
def test_demo_users_log_in_when_debug_is_on(client: Client, settings: Any) -> None:
    settings.DEBUG = True
    assert "signoff-demo" in seed()
    for username in ("alice", "bob", "admin"):
        credentials = {"username": username, "password": DEMO_PASSWORD}
        response = client.post("/accounts/login/", credentials)
        assert response.status_code == 302, username
        client.post("/accounts/logout/")


@pytest.mark.django_db
def test_login_page_names_the_demo_accounts_only_when_debug_is_on(
    client: Client, settings: Any
) -> None:
    settings.DEBUG = True
    assert DEMO_PASSWORD in client.get("/accounts/login/").content.decode()
    settings.DEBUG = False
    assert DEMO_PASSWORD not in client.get("/accounts/login/").content.decode()


@pytest.mark.django_db
def test_no_demo_password_when_debug_is_off(settings: Any) -> None:
    settings.DEBUG = False
    output = seed()
    assert "changepassword" in output
    assert not any(user.has_usable_password() for user in demo_users())


@pytest.mark.django_db
def test_debug_off_disables_a_leftover_demo_password_but_keeps_a_chosen_one(
    settings: Any,
) -> None:
    settings.DEBUG = True
    seed()
    carol = User.objects.get(username="carol")
    carol.set_password("carols-own-passphrase")
    carol.save()

    settings.DEBUG = False
    assert "Disabled the demo password of: alice, bob, dave" in seed()

    assert not User.objects.get(username="bob").has_usable_password()
    assert User.objects.get(username="carol").check_password("carols-own-passphrase")


@pytest.mark.django_db
def test_a_chosen_password_survives_a_second_seed_in_debug(settings: Any) -> None:
    settings.DEBUG = True
    seed()
    alice = User.objects.get(username="alice")
    alice.set_password("alices-own-passphrase")
    alice.save()
    seed()
    assert User.objects.get(username="alice").check_password("alices-own-passphrase")


@pytest.mark.django_db
def test_calls_the_engines_demo_workflows_when_it_has_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    module = types.ModuleType("tests_fake_workflow_demo")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    module.ensure_demo_workflows = lambda: calls.append("called") or ["one", "two"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(seed_demo, "WORKFLOWS_MODULE", module.__name__)

    assert "Demo workflows: 2 ensured." in seed()
    assert calls == ["called"]
