"""Two first sign-ins of the same person at once (two tabs) make one account."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from accounts import sso
from accounts.models import ExternalIdentity, User

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")


def test_two_first_sign_ins_at_once_make_one_account(settings) -> None:
    settings.OIDC_ALLOWED_DOMAINS = []
    claims = {"sub": "sub-zed", "preferred_username": "zed", "email": "zed@example.com"}
    start = threading.Barrier(2)
    users: list[int] = []
    errors: list[BaseException] = []

    def sign_in() -> None:
        try:
            start.wait()
            user = sso.sign_in(claims, issuer="https://idp.example.com", now=timezone.now())
            users.append(user.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(users) == 2 and users[0] == users[1]
    assert User.objects.filter(username__startswith="zed").count() == 1
    assert ExternalIdentity.objects.count() == 1
