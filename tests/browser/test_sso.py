"""Single sign-on in a real Chromium: the redirect flow to the test provider
(tests/accounts/oidc_provider/) and back, roles from its groups, sign-out at both ends, and the
refusals a person sees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accounts.models import ProviderGroupRole, RoleChange, User
from tests.accounts.oidc_provider.server import Provider, running_provider
from tests.factories import TEST_PASSWORD, GroupFactory, UserFactory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def idp(live_server, tmp_path_factory) -> Iterator[Provider]:
    with running_provider(
        tmp_path_factory.mktemp("oidc-provider"),
        redirect_uris=[f"{live_server.url}/accounts/oidc/callback/"],
        logout_uris=[f"{live_server.url}/accounts/login/"],
    ) as provider:
        yield provider


@pytest.fixture
def provider(idp: Provider, settings: Any, transactional_db: None) -> Iterator[Provider]:
    from accounts import sso

    idp.faults()
    idp.settings(settings)
    ProviderGroupRole.objects.create(
        provider_group="Finance-Approvers", role=GroupFactory(name="finance")
    )
    ProviderGroupRole.objects.create(provider_group="Managers", role=GroupFactory(name="manager"))
    yield idp
    sso.forget_provider()


@pytest.fixture
def new_page(browser, csp_guard) -> Iterator[Callable[[], Any]]:
    contexts = []

    def make() -> Any:
        context = csp_guard(browser.new_context(viewport={"width": 1280, "height": 860}))
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in_at_provider(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("#sso-login")
    page.wait_for_selector("#provider-username")
    page.fill("#provider-username", username)
    page.fill("#provider-password", f"{username}-password")
    page.click("#provider-submit")


def roles(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_sign_in_maps_roles_and_a_group_removed_is_gone_at_the_next_sign_in(
    provider, live_server, new_page
):
    provider.person(
        "alice",
        email="alice@example.com",
        given_name="Alice",
        family_name="Ng",
        groups=["Finance-Approvers", "Managers"],
    )
    page = new_page()
    sign_in_at_provider(page, live_server, "alice")
    page.wait_for_url("**/inbox/")
    assert page.inner_text(".account-name") == "Alice Ng"
    assert roles("alice") == {"finance", "manager"}

    # Sign-out ends the session here and at the provider (RP-initiated logout).
    page.click("form[action='/accounts/logout/'] button")
    page.wait_for_url("**/accounts/login/")
    assert page.locator("#sso-login").is_visible()
    page.goto(f"{live_server.url}/inbox/")
    page.wait_for_url("**/accounts/login/?next=/inbox/")

    provider.person("alice", groups=["Managers"])
    # The provider asks for the password again: its session ended too.
    sign_in_at_provider(page, live_server, "alice")
    page.wait_for_url("**/inbox/")
    assert roles("alice") == {"manager"}
    latest = RoleChange.objects.filter(user__username="alice").first()
    assert str(latest) == "roles from identity provider: \N{MINUS SIGN}finance"


@pytest.mark.parametrize(
    ("faults", "email", "refusal"),
    [
        ({"audience": "another-client"}, "hal@example.com", "made for another application"),
        ({"foreign_key": True}, "hal@example.com", "not signed by one of its published keys"),
        ({}, "hal@evil.example", "Accounts of evil.example may not sign in here"),
    ],
    ids=["wrong-audience", "bad-signature", "domain-not-allowed"],
)
def test_refused_sign_ins_say_why_and_sign_nobody_in(
    provider, live_server, new_page, settings, faults, email, refusal
):
    settings.OIDC_ALLOWED_DOMAINS = ["example.com"]
    provider.person("hal", email=email, groups=["Managers"])
    provider.faults(**faults)
    page = new_page()
    sign_in_at_provider(page, live_server, "hal")
    page.wait_for_selector("#sso-refusal")
    assert refusal in page.inner_text("#sso-refusal")
    assert not User.objects.filter(username="hal").exists()
    page.goto(f"{live_server.url}/inbox/")
    page.wait_for_url("**/accounts/login/?next=/inbox/")


def test_a_replayed_state_is_refused(provider, live_server, new_page):
    provider.person("jo", email="jo@example.com", groups=["Finance-Approvers"])
    page = new_page()
    answers: list[str] = []
    page.on(
        "request",
        lambda request: answers.append(request.url) if "/oidc/callback/" in request.url else None,
    )
    sign_in_at_provider(page, live_server, "jo")
    page.wait_for_url("**/inbox/")
    assert len(answers) == 1
    changes = RoleChange.objects.count()

    page.goto(answers[0])
    assert "already used" in page.inner_text("#sso-refusal")
    other = new_page()
    other.goto(answers[0])
    assert other.locator("#sso-refusal").is_visible()
    other.goto(f"{live_server.url}/inbox/")
    other.wait_for_url("**/accounts/login/?next=/inbox/")
    assert RoleChange.objects.count() == changes


def test_with_local_login_off_the_page_shows_only_the_provider(
    provider, live_server, new_page, settings
):
    settings.LOCAL_LOGIN = False
    settings.BREAK_GLASS_USER = "breakglass"
    UserFactory(username="breakglass", is_staff=True, is_superuser=True)
    provider.person("kim", email="kim@example.com", groups=[])
    page = new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.locator("#sso-login").is_visible()
    assert page.locator("input[name=password]").count() == 0
    page.click("#sso-login")
    page.fill("#provider-username", "kim")
    page.fill("#provider-password", "kim-password")
    page.click("#provider-submit")
    page.wait_for_url("**/inbox/")

    # The break-glass superuser still has a way in.
    glass = new_page()
    glass.goto(f"{live_server.url}/accounts/login/?break-glass")
    glass.fill("input[name=username]", "breakglass")
    glass.fill("input[name=password]", TEST_PASSWORD)
    glass.click("button[type=submit]")
    glass.wait_for_url("**/inbox/")
