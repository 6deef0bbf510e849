"""Logging in and out, changing a password, the home page, and who may enter the admin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.test import Client

from accounts.models import User
from tests.factories import TEST_PASSWORD


def test_login_page_renders_with_the_stylesheet(client: Client, db: None) -> None:
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/css/app.css" in html
    assert "/static/vendor/htmx.min.js" in html
    assert 'name="username"' in html and 'name="password"' in html


def test_static_files_are_served_after_collectstatic(
    client: Client, db: None, settings: Any, tmp_path: Path
) -> None:
    # As in production: collected into STATIC_ROOT, then served by WhiteNoise (pytest-django
    # turns DEBUG off, so WhiteNoise does not look in the source folders).
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    for path in ("/static/css/app.css", "/static/vendor/htmx.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        b"".join(response.streaming_content)  # type: ignore[attr-defined]
        response.close()


def test_login_takes_the_user_home(client: Client, requester: User) -> None:
    response = client.post(
        "/accounts/login/", {"username": "rita", "password": TEST_PASSWORD}, follow=True
    )
    assert response.redirect_chain == [("/inbox/", 302)]
    assert "Rita Requester" in response.content.decode()


def test_login_with_a_wrong_password_says_so(client: Client, requester: User) -> None:
    response = client.post("/accounts/login/", {"username": "rita", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_returns_to_the_page_asked_for(client: Client, requester: User) -> None:
    response = client.post(
        "/accounts/login/?next=/accounts/password_change/",
        {"username": "rita", "password": TEST_PASSWORD, "next": "/accounts/password_change/"},
    )
    assert response.headers["Location"] == "/accounts/password_change/"


def test_logout_is_a_post(client: Client, requester: User) -> None:
    client.force_login(requester)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/inbox/").status_code == 200

    response = client.post("/accounts/logout/")
    assert response.headers["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_home_requires_login(client: Client, db: None) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login/?next=/"


def test_home_is_the_inbox(client: Client, reviewer: User) -> None:
    client.force_login(reviewer)
    assert client.get("/").headers["Location"] == "/inbox/"


def test_profile_shows_the_user_and_roles(client: Client, reviewer: User) -> None:
    client.force_login(reviewer)
    html = client.get("/accounts/profile/").content.decode()
    assert "Signed in as <strong>Rob Reviewer</strong>" in html
    assert '<span class="badge">manager</span>' in html
    assert "The manager role." in html
    assert 'action="/accounts/logout/"' in html
    assert 'href="/admin/"' not in html


def test_profile_without_roles(client: Client, outsider: User) -> None:
    client.force_login(outsider)
    html = client.get("/accounts/profile/").content.decode()
    assert "No roles" in html


def test_staff_see_the_admin_link(client: Client, admin_user: User) -> None:
    client.force_login(admin_user)
    assert 'href="/admin/"' in client.get("/inbox/").content.decode()


def test_password_change(client: Client, requester: User) -> None:
    assert client.get("/accounts/password_change/").status_code == 302
    client.force_login(requester)
    assert client.get("/accounts/password_change/").status_code == 200

    new_password = "a-new-and-long-passphrase"
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": TEST_PASSWORD,
            "new_password1": new_password,
            "new_password2": new_password,
        },
        follow=True,
    )
    assert response.redirect_chain == [("/accounts/password_change/done/", 302)]
    assert "Password changed" in response.content.decode()
    # The session survives the change (Django rotates its hash), and the new password works.
    assert client.get("/inbox/").status_code == 200
    requester.refresh_from_db()
    assert requester.check_password(new_password)


def test_password_change_rejects_a_wrong_old_password(client: Client, requester: User) -> None:
    client.force_login(requester)
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": "long-pass-9", "new_password2": "long-pass-9"},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    requester.refresh_from_db()
    assert requester.check_password(TEST_PASSWORD)


def test_outsider_is_refused_by_the_admin(client: Client, outsider: User) -> None:
    client.force_login(outsider)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login/?next=/admin/"
    assert client.get("/admin/accounts/user/").status_code == 302


def test_outsider_cannot_log_in_to_the_admin(client: Client, outsider: User) -> None:
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "otto", "password": TEST_PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 200
    assert "staff account" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_admin_enters_the_admin(client: Client, admin_user: User) -> None:
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/auth/group/").status_code == 200
