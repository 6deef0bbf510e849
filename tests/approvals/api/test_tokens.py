"""API tokens: made on the profile page or in the admin, shown once, stored hashed, revoked."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import ApiToken
from approvals.services.api_tokens import token_create, token_hash
from approvals.services.errors import InvalidInput

pytestmark = pytest.mark.django_db

PAGE = "/accounts/api-tokens/"


def bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def shown_token(response) -> str:
    match = re.search(r'value="(sgf_[^"]+)"', response.content.decode())
    assert match, "the new token is on the page"
    return match.group(1)


def test_the_page_needs_a_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_create_shows_the_token_once_and_stores_only_its_hash(client, requester):
    client.force_login(requester)
    assert 'href="/accounts/api-tokens/"' in client.get("/accounts/profile/").content.decode()
    response = client.post(PAGE, {"action": "create", "name": "ERP", "expires": "90"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    plaintext = shown_token(response)
    token = ApiToken.objects.get()
    assert token.key_hash == token_hash(plaintext) and plaintext not in token.key_hash
    assert plaintext.startswith(token.prefix) and len(plaintext) > 40
    assert token.expires_at.date() == (timezone.now() + timedelta(days=90)).date()
    # Listed afterwards by name and prefix, never in full.
    page = client.get(PAGE).content.decode()
    assert "ERP" in page and token.prefix in page and plaintext not in page
    # It authenticates as the user, and records when it was used.
    response = bearer(plaintext).get("/api/v1/instances/")
    assert response.status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_several_named_tokens_and_bad_names(client, requester):
    client.force_login(requester)
    client.post(PAGE, {"action": "create", "name": "ERP", "expires": ""})
    client.post(PAGE, {"action": "create", "name": "Warehouse", "expires": ""})
    assert ApiToken.objects.filter(user=requester).count() == 2
    for data, message in [
        ({"name": "ERP", "expires": ""}, "You already have a token with this name."),
        ({"name": "  ", "expires": ""}, "Name the token (what uses it)."),
        ({"name": "x" * 101, "expires": ""}, "At most 100 characters."),
        ({"name": "Other", "expires": "7"}, "Choose one of the options."),
    ]:
        response = client.post(PAGE, {"action": "create", **data})
        assert response.status_code == 400
        assert message in response.content.decode()
    assert ApiToken.objects.filter(user=requester).count() == 2


def test_revoke_stops_it_at_once(client, requester):
    _, plaintext = token_create(user=requester, name="ERP", actor=requester, now=timezone.now())
    token = ApiToken.objects.get()
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 200
    client.force_login(requester)
    response = client.post(PAGE, {"action": "revoke", "token": token.pk}, follow=True)
    assert "revoked" in response.content.decode()
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 401
    # The name is free again.
    assert client.post(PAGE, {"action": "create", "name": "ERP", "expires": ""}).status_code == 200


def test_an_outsider_cannot_revoke_someone_elses_token(client, requester, outsider):
    _, plaintext = token_create(
        user=requester, name="Payroll bridge", actor=requester, now=timezone.now()
    )
    token = ApiToken.objects.get()
    client.force_login(outsider)
    response = client.post(PAGE, {"action": "revoke", "token": token.pk}, follow=True)
    assert "No such token." in response.content.decode()
    assert "Payroll bridge" not in client.get(PAGE).content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 200
    client.post(PAGE, {"action": "revoke", "token": "not-a-number"})
    token.refresh_from_db()
    assert token.revoked_at is None


def test_expired_tokens_and_inactive_users_are_refused(requester):
    now = timezone.now()
    _, expiring = token_create(
        user=requester, name="short", actor=requester, now=now, expires_at=now + timedelta(days=1)
    )
    ApiToken.objects.filter(name="short").update(expires_at=now - timedelta(seconds=1))
    assert bearer(expiring).get("/api/v1/tasks/").status_code == 401
    _, plaintext = token_create(user=requester, name="long", actor=requester, now=now)
    requester.is_active = False
    requester.save()
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 401


def test_other_authorization_schemes_fall_through_to_401(requester):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic cml0YTpwdw==")
    assert client.get("/api/v1/tasks/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    assert client.get("/api/v1/tasks/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer a b")
    assert client.get("/api/v1/tasks/").status_code == 401


def test_session_authentication_needs_csrf_for_writes(requester):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(requester)
    assert client.get("/api/v1/tasks/").status_code == 200
    response = client.post(
        "/api/v1/workflows/x/instances/", {"context": {}}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_admin_makes_a_token_for_an_integration_account(client, admin_user, requester):
    client.force_login(admin_user)
    response = client.post(
        "/admin/approvals/apitoken/add/", {"user": requester.pk, "name": "ERP (admin)"}
    )
    assert response.status_code == 200
    plaintext = shown_token(response)
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    assert token.user == requester and token.key_hash == token_hash(plaintext)
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 200
    # Duplicate names are refused with the form error, nothing made.
    response = client.post(
        "/admin/approvals/apitoken/add/", {"user": requester.pk, "name": "ERP (admin)"}
    )
    assert "You already have a token with this name." in response.content.decode()
    assert ApiToken.objects.count() == 1
    response = client.post(
        "/admin/approvals/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 401


def test_only_staff_with_permission_make_tokens_for_others(requester, outsider):
    from approvals.services.errors import NotAllowed

    with pytest.raises(NotAllowed):
        token_create(user=requester, name="x", actor=outsider, now=timezone.now())
    assert not ApiToken.objects.exists()


def test_create_api_token_command_prints_a_working_token(requester):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("create_api_token", "rita", "CI", stdout=out)
    plaintext = out.getvalue().strip()
    assert bearer(plaintext).get("/api/v1/tasks/").status_code == 200
    with pytest.raises(CommandError, match="already have a token with this name"):
        call_command("create_api_token", "rita", "CI", stdout=StringIO())
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("create_api_token", "nobody", "CI", stdout=StringIO())
    assert ApiToken.objects.count() == 1


def test_no_token_for_guardians_anonymous_user(client, admin_user, requester, anonymous):
    from io import StringIO

    from django.core.management import CommandError, call_command

    client.force_login(admin_user)
    page = client.get("/admin/approvals/apitoken/add/")
    users = page.context["adminform"].form.fields["user"].queryset
    assert requester in users and anonymous not in users
    response = client.post("/admin/approvals/apitoken/add/", {"user": anonymous.pk, "name": "x"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    with pytest.raises(CommandError, match="no user 'AnonymousUser'"):
        call_command("create_api_token", "AnonymousUser", "CI", stdout=StringIO())
    with pytest.raises(InvalidInput):
        token_create(user=anonymous, name="x", actor=admin_user, now=timezone.now())
    assert not ApiToken.objects.exists()
