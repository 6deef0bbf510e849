"""Single sign-on against a real OpenID Connect provider started for this module
(tests/accounts/oidc_provider/): the redirect flow through Signoff's views, the checks of the
ID token, people matched by subject, roles from the provider's groups, passwords turned off,
RP-initiated logout, and API tokens of people who sign in with the provider."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from django.contrib.auth.models import Group
from django.core.exceptions import SuspiciousOperation
from django.test import Client
from django.utils import timezone

from accounts import sso
from accounts.models import ExternalIdentity, KeptRole, ProviderGroupRole, RoleChange, User
from approvals.models import ApiToken
from approvals.services.api_tokens import token_create
from tests.accounts.oidc_provider.server import CLIENT_ID, Provider
from tests.accounts.sso_flow import provider_answer, sign_in
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory
from tests.processes import BASE_DIR, child_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(idp: Provider, settings: Any) -> Iterator[Provider]:
    """The provider, Signoff pointed at it, no faults; roles finance and manager mapped."""
    idp.faults()
    idp.settings(settings)
    finance = GroupFactory(name="finance")
    manager = GroupFactory(name="manager")
    ProviderGroupRole.objects.create(provider_group="Finance-Approvers", role=finance)
    ProviderGroupRole.objects.create(provider_group="Managers", role=manager)
    yield idp
    sso.forget_provider()


def roles(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def signed_in_user(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


# ----- The flow


def test_sign_in_creates_the_person_with_the_roles_of_their_groups(provider, client):
    provider.person(
        "alice",
        email="alice@example.com",
        given_name="Alice",
        family_name="Ng",
        groups=["Finance-Approvers", "Staff-All"],
    )
    flow = provider_answer(client, provider, "alice")
    # Code flow with a PKCE challenge, state and nonce.
    query = flow.authorize_query
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["scope"] == ["openid email profile"]

    response = client.get(flow.callback)
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    user = signed_in_user(client)
    assert (user.username, user.first_name, user.last_name, user.email) == (
        "alice",
        "Alice",
        "Ng",
        "alice@example.com",
    )
    assert not user.has_usable_password()
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "sub-alice")
    assert identity.last_sign_in_at is not None
    assert roles(user) == {"finance"}
    (change,) = RoleChange.objects.filter(user=user)
    assert str(change) == "roles from identity provider: +finance"
    assert client.get("/inbox/").status_code == 200


def test_a_group_removed_at_the_provider_takes_the_role_away_at_the_next_sign_in(provider, client):
    provider.person("bob", email="bob@example.com", given_name="Bob", groups=["Finance-Approvers"])
    sign_in(client, provider, "bob")
    bob = User.objects.get(username="bob")
    auditor = GroupFactory(name="auditor")  # not mapped: the provider leaves it alone
    bob.groups.add(auditor)
    assert roles(bob) == {"finance", "auditor"}

    client.logout()
    provider.person("bob", given_name="Robert", groups=["Managers"])
    assert sign_in(client, provider, "bob").status_code == 302
    bob.refresh_from_db()
    assert bob.first_name == "Robert"
    assert roles(bob) == {"manager", "auditor"}
    latest = RoleChange.objects.filter(user=bob).first()
    assert str(latest) == "roles from identity provider: +manager \N{MINUS SIGN}finance"
    assert RoleChange.objects.filter(user=bob).count() == 2

    # The same groups again: nothing changes, nothing is recorded.
    client.logout()
    sign_in(client, provider, "bob")
    assert RoleChange.objects.filter(user=bob).count() == 2


def test_a_role_kept_locally_survives_the_provider(provider, client):
    provider.person("cara", email="cara@example.com", groups=[])
    sign_in(client, provider, "cara")
    cara = User.objects.get(username="cara")
    sso.keep_role(user=cara, role=Group.objects.get(name="manager"), note="acting manager")
    assert roles(cara) == {"manager"}

    client.logout()
    sign_in(client, provider, "cara")
    assert roles(cara) == {"manager"}
    assert not RoleChange.objects.filter(user=cara).exists()
    KeptRole.objects.filter(user=cara).delete()
    client.logout()
    sign_in(client, provider, "cara")
    assert roles(cara) == set()
    assert str(RoleChange.objects.get(user=cara)) == (
        "roles from identity provider: \N{MINUS SIGN}manager"
    )


def test_people_are_matched_by_subject_never_by_e_mail(provider, client):
    local = UserFactory(username="dan", email="dan@example.com", groups=[])
    provider.person("dan", email="dan@example.com", groups=[])
    sign_in(client, provider, "dan")
    newcomer = signed_in_user(client)
    assert newcomer.pk != local.pk
    assert newcomer.username == "dan-2"
    assert not ExternalIdentity.objects.filter(user=local).exists()

    # A changed e-mail at the provider is the same person here.
    client.logout()
    provider.person("dan", email="daniel@example.com")
    sign_in(client, provider, "dan")
    assert signed_in_user(client).pk == newcomer.pk
    newcomer.refresh_from_db()
    assert newcomer.email == "daniel@example.com"


def test_an_account_linked_by_an_admin_is_the_one_signed_in(provider, client):
    local = UserFactory(username="erin", email="erin@example.com")
    ExternalIdentity.objects.create(user=local, issuer=provider.issuer, subject="sub-erin")
    provider.person("erin", email="erin@example.com", groups=["Managers"])
    sign_in(client, provider, "erin")
    assert signed_in_user(client).pk == local.pk
    assert roles(local) == {"manager"}


def test_the_page_asked_for_is_where_sign_in_ends(provider, client):
    provider.person("fay", email="fay@example.com")
    flow = provider_answer(
        client, provider, "fay", start="/accounts/oidc/authenticate/?next=/accounts/profile/"
    )
    response = client.get(flow.callback)
    assert response["Location"] == "/accounts/profile/"


def test_an_outside_next_is_not_followed(provider, client):
    provider.person("gus", email="gus@example.com")
    client.get("/accounts/oidc/authenticate/?next=https://evil.example/")
    assert client.session["oidc_login_next"] is None


# ----- Refusals


def test_an_id_token_for_another_audience_is_refused(provider, client):
    provider.person("hal", email="hal@example.com", groups=["Managers"])
    provider.faults(audience="another-client")
    response = sign_in(client, provider, "hal")
    assert response.status_code == 403
    assert "made for another application" in response.content.decode()
    assert signed_in_user(client) is None
    assert not User.objects.filter(username="hal").exists()


def test_an_id_token_signed_with_a_key_the_jwks_does_not_publish_is_refused(provider, client):
    provider.person("ivy", email="ivy@example.com")
    provider.faults(foreign_key=True)
    response = sign_in(client, provider, "ivy")
    assert response.status_code == 403
    assert "not signed by one of its published keys" in response.content.decode()
    assert signed_in_user(client) is None
    assert not ExternalIdentity.objects.exists()


def test_a_replayed_answer_is_refused(provider, client):
    provider.person("jo", email="jo@example.com", groups=["Finance-Approvers"])
    flow = provider_answer(client, provider, "jo")
    assert client.get(flow.callback).status_code == 302
    jo = signed_in_user(client)
    changes = RoleChange.objects.count()

    # The same state again, in the browser that used it...
    again = client.get(flow.callback)
    assert again.status_code == 403
    assert "already used" in again.content.decode()
    # ...and in another browser, which never started a sign-in.
    other = Client()
    assert other.get(flow.callback).status_code == 403
    assert "_auth_user_id" not in other.session
    assert RoleChange.objects.count() == changes
    assert signed_in_user(client) == jo


def test_userinfo_about_someone_else_is_refused(provider, client):
    provider.person("lea", email="lea@example.com")
    provider.faults(userinfo_sub="sub-admin")
    response = sign_in(client, provider, "lea")
    assert response.status_code == 403
    assert "answered about someone else" in response.content.decode()
    assert not ExternalIdentity.objects.exists()


def test_a_forged_state_is_refused(provider, client):
    provider.person("kim", email="kim@example.com")
    flow = provider_answer(client, provider, "kim")
    forged = flow.callback.replace("state=", "state=x")
    assert client.get(forged).status_code == 403
    assert signed_in_user(client) is None


def test_an_e_mail_domain_not_allowed_is_refused_and_nothing_is_written(provider, client, settings):
    settings.OIDC_ALLOWED_DOMAINS = ["example.com"]
    provider.person("mallory", email="mallory@evil.example", groups=["Finance-Approvers"])
    response = sign_in(client, provider, "mallory")
    assert response.status_code == 403
    body = response.content.decode()
    assert "Accounts of evil.example may not sign in here" in body
    assert "example.com account" in body
    assert not User.objects.filter(email="mallory@evil.example").exists()
    assert not ExternalIdentity.objects.exists() and not RoleChange.objects.exists()

    provider.person("nina", email="nina@Example.com")
    assert sign_in(client, provider, "nina").status_code == 302


def test_a_deactivated_account_is_refused(provider, client):
    provider.person("otis", email="otis@example.com", groups=["Managers"])
    sign_in(client, provider, "otis")
    otis = User.objects.get(username="otis")
    client.logout()
    otis.is_active = False
    otis.save()
    provider.person("otis", groups=[])
    response = sign_in(client, provider, "otis")
    assert response.status_code == 403
    assert "deactivated" in response.content.decode()
    assert roles(otis) == {"manager"}  # nothing was applied


def test_deactivating_someone_signed_in_with_the_provider_ends_their_session(provider, client):
    provider.person("olga", email="olga@example.com")
    sign_in(client, provider, "olga")
    assert client.get("/inbox/").status_code == 200
    User.objects.filter(username="olga").update(is_active=False)
    assert client.get("/inbox/")["Location"] == "/accounts/login/?next=/inbox/"


def test_an_error_from_the_provider_signs_nobody_in(provider, client):
    client.get("/accounts/oidc/authenticate/")
    (state,) = client.session["oidc_states"]
    response = client.get(f"/accounts/oidc/callback/?error=access_denied&state={state}")
    assert response.status_code == 403
    assert state not in client.session["oidc_states"]


@pytest.fixture
def impostor() -> Iterator[str]:
    """A server whose discovery document names another issuer than the one asked."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/.well-known/openid-configuration":
                self.send_error(404)
                return
            body = json.dumps(
                {
                    "issuer": "https://elsewhere.example",
                    "authorization_endpoint": "https://elsewhere.example/authorize",
                    "token_endpoint": "https://elsewhere.example/token",
                    "jwks_uri": "https://elsewhere.example/jwks",
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_provider_whose_discovery_names_another_issuer_is_not_used(provider, settings, impostor):
    settings.OIDC_ISSUER = impostor
    sso.forget_provider()
    response = Client().get("/accounts/oidc/authenticate/")
    assert response.status_code == 503
    assert "configuration does not match" in response.content.decode()


def test_an_unreachable_provider_is_said_so(provider, settings, impostor):
    settings.OIDC_ISSUER = impostor + "/nothing-here"
    sso.forget_provider()
    response = Client().get("/accounts/oidc/authenticate/")
    assert response.status_code == 503
    assert "could not be reached" in response.content.decode()


# ----- The ID token, checked by the backend (tokens signed with the provider's own key)


def provider_key(provider: Provider) -> bytes:
    return (provider.folder / "signing-key.pem").read_bytes()


def id_token(provider: Provider, **claims: Any) -> str:
    key = provider_key(provider)
    jwks = requests.get(f"{provider.issuer}/.well-known/jwks.json", timeout=10).json()
    now = int(time.time())
    body = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "sub-unit",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": jwks["keys"][0]["kid"]})


def verify(provider: Provider, token: str, nonce: str = "n-1") -> dict[str, Any]:
    backend = sso.ProviderBackend()
    backend.OIDC_OP_JWKS_ENDPOINT = sso.oidc_setting("OIDC_OP_JWKS_ENDPOINT")
    backend.OIDC_RP_SIGN_ALGO = sso.SIGNING_ALGORITHM
    backend.OIDC_RP_IDP_SIGN_KEY = None
    backend.OIDC_RP_CLIENT_SECRET = "unused"
    return backend.verify_token(token, nonce=nonce)


def test_a_token_signed_by_the_provider_verifies(provider):
    claims = verify(provider, id_token(provider))
    assert claims["sub"] == "sub-unit"


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        ({"aud": "another-client"}, "made for another application"),
        ({"aud": [CLIENT_ID, "another-client"]}, "made for another application"),
        ({"iss": "https://elsewhere.example"}, "comes from another issuer"),
        ({"exp": int(time.time()) - 3600}, "has expired"),
        ({"exp": None}, "not valid"),
    ],
)
def test_a_token_with_wrong_claims_is_refused(provider, claims, refusal):
    with pytest.raises(sso.SignInRefused, match=refusal):
        verify(provider, id_token(provider, **claims))


def test_a_tampered_token_is_refused(provider):
    header, _, signature = id_token(provider).split(".")
    other_body = id_token(provider, sub="sub-admin").split(".")[1]
    with pytest.raises(sso.SignInRefused, match="not signed by one of its published keys"):
        verify(provider, f"{header}.{other_body}.{signature}")


def test_unsigned_and_symmetric_tokens_are_refused(provider):
    unsigned = jwt.encode({"sub": "x"}, None, algorithm="none", headers={"kid": "k"})
    with pytest.raises((sso.SignInRefused, SuspiciousOperation)):
        verify(provider, unsigned)
    # HS256 under the provider's key id: the JWKS key is for RS256 only.
    jwks = requests.get(f"{provider.issuer}/.well-known/jwks.json", timeout=10).json()
    symmetric = jwt.encode(
        {"sub": "x"},
        "a-shared-secret-of-thirty-two-bytes",
        algorithm="HS256",
        headers={"kid": jwks["keys"][0]["kid"]},
    )
    with pytest.raises((sso.SignInRefused, SuspiciousOperation)):
        verify(provider, symmetric)


def test_a_token_for_another_nonce_is_refused(provider):
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        verify(provider, id_token(provider), nonce="n-2")


# ----- Passwords off, break-glass, the login page


@pytest.fixture
def passwords_off(provider, settings):
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USER = "breakglass"
    return UserFactory(username="breakglass", is_staff=True, is_superuser=True)


def test_with_passwords_off_the_login_page_shows_only_the_provider(passwords_off, client):
    body = client.get("/accounts/login/").content.decode()
    assert 'id="sso-login"' in body and 'href="/accounts/oidc/authenticate/"' in body
    assert 'name="password"' not in body
    assert "Demo accounts" not in body


def test_with_passwords_off_a_password_signs_in_only_the_break_glass_user(
    passwords_off, client, reviewer
):
    refused = client.post("/accounts/login/", {"username": "rob", "password": TEST_PASSWORD})
    assert refused.status_code == 200
    assert "Passwords are turned off here" in refused.content.decode()
    assert "_auth_user_id" not in client.session

    assert 'name="password"' in client.get("/accounts/login/?break-glass").content.decode()
    allowed = client.post("/accounts/login/", {"username": "breakglass", "password": TEST_PASSWORD})
    assert allowed.status_code == 302
    assert signed_in_user(client) == passwords_off


def test_turning_passwords_off_ends_password_sessions_but_the_break_glass_one(
    provider, settings, reviewer, admin_user
):
    rob, glass = Client(), Client()
    rob.force_login(reviewer)
    glass.force_login(admin_user)
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USER = admin_user.username
    assert rob.get("/inbox/")["Location"] == "/accounts/login/?next=/inbox/"
    assert glass.get("/inbox/").status_code == 200


def test_the_break_glass_user_must_be_a_superuser(passwords_off, client):
    passwords_off.is_superuser = False
    passwords_off.save()
    response = client.post(
        "/accounts/login/", {"username": "breakglass", "password": TEST_PASSWORD}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_with_passwords_on_the_login_page_offers_both(provider, client):
    body = client.get("/accounts/login/?next=/requests/").content.decode()
    assert 'href="/accounts/oidc/authenticate/?next=/requests/"' in body
    assert 'name="password"' in body


def test_without_an_issuer_single_sign_on_is_off(client, settings):
    settings.OIDC_ISSUER = ""
    assert client.get("/accounts/oidc/authenticate/").status_code == 404
    assert client.get("/accounts/oidc/callback/?code=x&state=y").status_code == 404
    body = client.get("/accounts/login/").content.decode()
    assert "sso-login" not in body and 'name="password"' in body


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OIDC_ISSUER": "https://idp.example.com"}, "OIDC_CLIENT_ID must be set"),
        ({"LOCAL_LOGIN": "false"}, "LOCAL_LOGIN=false needs single sign-on"),
        ({"OIDC_ISSUER": "idp.example.com"}, "is not an http(s) URL"),
    ],
)
def test_an_incomplete_configuration_stops_the_process(tmp_path: Path, variables, message):
    env = child_env(tmp_path, DEBUG="true", **variables)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_the_variables_turn_single_sign_on_on(tmp_path: Path):
    env = child_env(
        tmp_path,
        DEBUG="true",
        OIDC_ISSUER="https://idp.example.com/tenant/",
        OIDC_CLIENT_ID="signoff",
        OIDC_CLIENT_SECRET="s3cret",
        OIDC_SCOPES="email,groups",
        OIDC_GROUPS_CLAIM="roles",
        OIDC_ALLOWED_DOMAINS="Example.com, @example.org",
        LOCAL_LOGIN="false",
        BREAK_GLASS_USER="breakglass",
    )
    script = (
        "from django.conf import settings as s; import json; print(json.dumps(["
        "s.OIDC_ISSUER, s.OIDC_SCOPES, s.OIDC_GROUPS_CLAIM, s.OIDC_ALLOWED_DOMAINS,"
        "s.LOCAL_LOGIN, s.BREAK_GLASS_USER, s.AUTHENTICATION_BACKENDS[-1],"
        "s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']]))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "https://idp.example.com/tenant",
        "openid email groups",
        "roles",
        ["example.com", "example.org"],
        False,
        "breakglass",
        sso.BACKEND,
        ["'self'", "https://idp.example.com"],
    ]


# ----- Signing out


def test_signing_out_ends_the_session_here_and_at_the_provider(provider, client):
    provider.person("pia", email="pia@example.com")
    flow = provider_answer(client, provider, "pia")
    client.get(flow.callback)
    id_token_hint = client.session["oidc_id_token"]
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{provider.issuer}/logout/?")
    assert f"id_token_hint={id_token_hint}" in location
    assert "post_logout_redirect_uri=http%3A%2F%2Ftestserver%2Faccounts%2Flogin%2F" in location
    assert "_auth_user_id" not in client.session

    # The provider ends its own session and sends the browser back to the login page.
    back = flow.provider_session.get(location, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    assert back.headers["Location"] == "http://testserver/accounts/login/"
    again = flow.provider_session.get(flow.authorize_url, timeout=10)
    assert again.url.startswith(provider.login_url)


def test_signing_out_after_a_password_sign_in_stays_here(provider, client, reviewer):
    client.force_login(reviewer)
    response = client.post("/accounts/logout/")
    assert response["Location"] == "/accounts/login/"


# ----- API tokens and deactivation


def test_api_tokens_work_for_people_who_sign_in_with_the_provider(provider, client):
    provider.person("quin", email="quin@example.com", groups=["Managers"])
    sign_in(client, provider, "quin")
    quin = User.objects.get(username="quin")
    _, plaintext = token_create(user=quin, name="laptop", actor=quin, now=timezone.now())
    api = Client()
    assert api.get("/api/v1/tasks/", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200


def test_deactivating_a_person_revokes_their_api_tokens(reviewer):
    now = timezone.now()
    token, plaintext = token_create(user=reviewer, name="ci", actor=reviewer, now=now)
    api = Client()
    assert api.get("/api/v1/tasks/", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 200
    reviewer.is_active = False
    reviewer.save()
    token.refresh_from_db()
    assert token.revoked_at is not None
    reviewer.is_active = True
    reviewer.save()
    assert api.get("/api/v1/tasks/", HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code == 401
    assert ApiToken.objects.filter(user=reviewer, revoked_at__isnull=True).count() == 0


# ----- The admin


def test_the_admin_shows_mappings_and_role_changes_and_refuses_outsiders(
    provider, client, admin_user, outsider
):
    provider.person("rex", email="rex@example.com", groups=["Finance-Approvers"])
    sign_in(client, provider, "rex")
    rex = User.objects.get(username="rex")
    client.logout()

    pages = [
        "/admin/accounts/providergrouprole/",
        "/admin/accounts/rolechange/",
        f"/admin/accounts/user/{rex.pk}/change/",
    ]
    client.force_login(outsider)
    for page in pages:
        assert client.get(page).status_code == 302, page
    client.force_login(admin_user)
    assert "Finance-Approvers" in client.get(pages[0]).content.decode()
    assert "roles from identity provider: +finance" in client.get(pages[1]).content.decode()
    user_page = client.get(pages[2]).content.decode()
    assert "sub-rex" in user_page and "roles from identity provider: +finance" in user_page
    # Role changes are a record: not added, edited or deleted by hand.
    change = RoleChange.objects.get(user=rex)
    assert client.get("/admin/accounts/rolechange/add/").status_code == 403
    assert client.post(f"/admin/accounts/rolechange/{change.pk}/delete/").status_code == 403
    assert RoleChange.objects.filter(pk=change.pk).exists()
    # The mapping shows on the role's page too.
    finance = Group.objects.get(name="finance")
    assert (
        "Finance-Approvers"
        in client.get(f"/admin/auth/group/{finance.pk}/change/").content.decode()
    )
    # The record outlives the account.
    rex.delete()
    change.refresh_from_db()
    assert (change.user, change.username) == (None, "rex")


def test_keeping_a_role_in_the_admin_gives_it_and_protects_it(provider, client, admin_user):
    provider.person("sam", email="sam@example.com", groups=[])
    sign_in(client, provider, "sam")
    sam = User.objects.get(username="sam")
    manager = Group.objects.get(name="manager")
    client.force_login(admin_user)
    page = f"/admin/accounts/user/{sam.pk}/change/"
    form = client.get(page).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value is not None and name not in ("groups", "user_permissions")
    }
    data.update(
        {
            "date_joined_0": sam.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": sam.date_joined.strftime("%H:%M:%S"),
            "external_identities-TOTAL_FORMS": "1",
            "external_identities-INITIAL_FORMS": "1",
            "external_identities-0-id": str(sam.external_identities.get().pk),
            "external_identities-0-user": str(sam.pk),
            "external_identities-0-issuer": provider.issuer,
            "external_identities-0-subject": "sub-sam",
            "kept_roles-TOTAL_FORMS": "1",
            "kept_roles-INITIAL_FORMS": "0",
            "kept_roles-0-role": str(manager.pk),
            "kept_roles-0-note": "covering for Mia",
            "role_changes-TOTAL_FORMS": "0",
            "role_changes-INITIAL_FORMS": "0",
        }
    )
    data.pop("last_login", None)
    data.pop("password", None)
    response = client.post(page, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert roles(sam) == {"manager"}
    client.logout()
    sign_in(client, provider, "sam")
    assert roles(sam) == {"manager"}
