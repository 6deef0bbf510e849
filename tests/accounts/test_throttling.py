"""Sign-in throttling (accounts/throttling.py, django-axes): wrong passwords lock out the
username and the address they came from, for the cool-off, with a page that says until when; a
successful sign-in forgets only the user's own failures; API tokens are not concerned."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from axes.models import AccessAttempt, AccessFailureLog
from django.test import AsyncClient, Client
from rest_framework.test import APIClient

from accounts.models import User
from approvals.services.api_tokens import token_create
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LIMIT = 5  # AXES_FAILURE_LIMIT's default
LOCKED = "Sign-in is locked until"


def sign_in(
    client: Client, username: str, password: str, address: str, path: str = "/accounts/login/"
):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(
    client: Client, username: str, address: str, times: int = 1, path: str = "/accounts/login/"
):
    for _ in range(times):
        response = sign_in(client, username, "wrong", address, path)
    return response


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_wrong_passwords_lock_out_the_username_even_with_the_right_password(
    client: Client, requester: User, outsider: User
) -> None:
    # From a different address each time: it is the username that is counted.
    for n in range(LIMIT - 1):
        assert fail(client, "rita", f"10.0.0.{n}").status_code == 200
    locking = fail(client, "rita", "10.0.0.99")
    assert locking.status_code == 429
    assert LOCKED in locking.content.decode()

    refused = sign_in(client, "rita", TEST_PASSWORD, "10.0.1.1")
    assert refused.status_code == 429
    text = " ".join(refused.content.decode().split())
    until = '<time datetime="2026-11-02T09:15:00+00:00">2 Nov 2026, 09:15 UTC</time>'
    assert f"{LOCKED} <strong>{until}" in text
    assert "(in 15 minutes): try again then." in text
    assert refused.headers["Retry-After"] == "901"
    assert "_auth_user_id" not in client.session

    # Someone else, from one of those addresses, is not concerned.
    assert signed_in(sign_in(Client(), "otto", TEST_PASSWORD, "10.0.0.1"))


def test_wrong_passwords_from_one_address_lock_out_that_address(
    client: Client, requester: User, outsider: User
) -> None:
    for n in range(LIMIT):
        fail(client, f"guess{n}", "10.0.0.9")
    refused = sign_in(client, "rita", TEST_PASSWORD, "10.0.0.9")
    assert refused.status_code == 429 and LOCKED in refused.content.decode()
    # The same person from elsewhere signs in.
    assert signed_in(sign_in(Client(), "rita", TEST_PASSWORD, "10.0.0.10"))


def test_a_forged_forwarded_for_header_does_not_escape_the_address_lock(
    client: Client, requester: User
) -> None:
    for n in range(LIMIT):
        fail(client, f"guess{n}", "10.0.0.9")
    response = client.post(
        "/accounts/login/",
        {"username": "rita", "password": TEST_PASSWORD},
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="192.0.2.7",
    )
    assert response.status_code == 429


def test_behind_a_proxy_the_clients_are_told_apart_by_the_address_it_forwards(
    client: Client, requester: User, settings
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    for n in range(LIMIT):
        client.post(
            "/accounts/login/",
            {"username": f"guess{n}", "password": "wrong"},
            REMOTE_ADDR=proxy,
            # What the client wrote itself, then what the proxy appended.
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 192.0.2.66",
        )
    assert AccessAttempt.objects.filter(ip_address="192.0.2.66").count() == LIMIT
    other = Client().post(
        "/accounts/login/",
        {"username": "rita", "password": TEST_PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="192.0.2.77",
    )
    assert other.status_code == 302
    # A header that is not an address, or lacks the proxy's entry: the connection's address.
    for forwarded in ("not-an-address", ""):
        Client().post(
            "/accounts/login/",
            {"username": "nobody", "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=forwarded,
        )
    assert AccessAttempt.objects.filter(ip_address=proxy).count() == 1


def test_the_lock_ends_after_the_cool_off(client: Client, requester: User, frozen) -> None:
    fail(client, "rita", "10.0.0.1", times=LIMIT)
    frozen.shift(timedelta(minutes=15))
    assert sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1").status_code == 429
    frozen.shift(timedelta(seconds=1))
    assert signed_in(sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1"))


def test_refused_attempts_during_the_lock_do_not_extend_it(
    client: Client, requester: User, frozen
) -> None:
    fail(client, "rita", "10.0.0.1", times=LIMIT)
    frozen.shift(timedelta(minutes=10))
    refused = fail(client, "rita", "10.0.0.1", times=3)
    assert refused.status_code == 429 and "2 Nov 2026, 09:15 UTC" in refused.content.decode()
    frozen.shift(timedelta(minutes=5, seconds=1))
    assert signed_in(sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1"))


def test_a_successful_sign_in_forgets_the_user_s_failures(client: Client, requester: User) -> None:
    fail(client, "rita", "10.0.0.1", times=LIMIT - 1)
    assert signed_in(sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1"))
    client.logout()
    assert fail(client, "rita", "10.0.0.1", times=LIMIT - 1).status_code == 200
    assert signed_in(sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1"))


def test_signing_in_as_oneself_does_not_forget_guesses_at_someone_else(
    client: Client, requester: User, outsider: User
) -> None:
    fail(client, "rita", "10.0.0.1", times=LIMIT - 1)
    assert signed_in(sign_in(Client(), "otto", TEST_PASSWORD, "10.0.0.1"))
    assert fail(client, "rita", "10.0.0.1").status_code == 429
    assert sign_in(client, "rita", TEST_PASSWORD, "10.0.0.2").status_code == 429


def test_the_admin_s_sign_in_is_throttled_too(client: Client, admin_user: User) -> None:
    for _ in range(LIMIT - 1):
        assert fail(client, "ada", "10.0.0.1", path="/admin/login/").status_code == 200
    assert fail(client, "ada", "10.0.0.1", path="/admin/login/").status_code == 429
    refused = sign_in(client, "ada", TEST_PASSWORD, "10.0.0.2", path="/admin/login/")
    assert refused.status_code == 429 and LOCKED in refused.content.decode()
    # Locked on the admin's page, locked on the site's.
    assert sign_in(client, "ada", TEST_PASSWORD, "10.0.0.3").status_code == 429


def test_api_tokens_are_not_concerned(client: Client, requester: User) -> None:
    _token, plaintext = token_create(user=requester, name="ci", actor=requester, now=NOW)
    fail(client, "rita", "10.0.0.1", times=LIMIT)
    api = APIClient(REMOTE_ADDR="10.0.0.1")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert api.get("/api/v1/tasks/").status_code == 200


def test_a_lockout_is_written_to_the_security_log_and_kept_for_the_admin(
    client: Client, requester: User, admin_user: User, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="signoff.security"):
        fail(client, "rita", "10.0.0.1", times=LIMIT)
        sign_in(client, "rita", TEST_PASSWORD, "10.0.0.1")
    lines = [r.getMessage() for r in caplog.records if r.name == "signoff.security"]
    expected = (
        "sign-in locked out: username='rita' address=10.0.0.1 path=/accounts/login/"
        " until=2026-11-02T09:15:00+00:00"
    )
    assert lines == [expected, expected]
    # Every failure stays listed in the admin, with whether it was refused by the lock.
    assert AccessFailureLog.objects.filter(username="rita").count() == LIMIT
    assert AccessFailureLog.objects.filter(username="rita", locked_out=True).count() == 1
    staff = Client()
    staff.force_login(admin_user)
    page = staff.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "rita" in page.content.decode()


def test_bad_input_is_a_failure_like_any_other(client: Client, requester: User) -> None:
    response = client.post("/accounts/login/", {"username": "rita\x00", "password": "x"})
    assert response.status_code == 200
    assert client.post("/accounts/login/", {}).status_code == 200
    assert "_auth_user_id" not in client.session


def test_the_lockout_page_is_served_by_the_asynchronous_stack_too(requester: User) -> None:
    # Daphne runs the middleware asynchronously, where axes calls the lockout page differently.
    client = AsyncClient(REMOTE_ADDR="10.0.0.1")

    async def scenario():
        for _ in range(LIMIT):
            response = await client.post("/accounts/login/", {"username": "rita", "password": "no"})
        return response

    response = async_to_sync(scenario)()
    assert response.status_code == 429
    assert LOCKED in response.content.decode() and response.headers["Retry-After"] == "901"
