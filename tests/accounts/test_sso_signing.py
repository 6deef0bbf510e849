"""Signing a decision with single sign-on: the signer signs in again at the real test provider,
which must ask for their password then (prompt=login, max_age=0, its auth_time), as the person
signed in here; that fresh sign-in signs one decision, within FRESH_SIGN_IN_SECONDS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts import sso
from accounts.models import User
from approvals.models import Decision
from approvals.services.instances import instance_start
from tests.accounts.oidc_provider.server import Provider, running_provider
from tests.accounts.sso_flow import provider_answer, sign_in
from tests.approvals.flows import publish
from tests.approvals.services.test_signatures import MEANING, signed_flow
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with running_provider(
        tmp_path_factory.mktemp("oidc-provider"),
        redirect_uris=["http://testserver/accounts/oidc/callback/"],
        logout_uris=["http://testserver/accounts/login/"],
    ) as provider:
        yield provider


@pytest.fixture
def provider(idp: Provider, settings: Any) -> Iterator[Provider]:
    idp.faults()
    idp.settings(settings)
    idp.person("vera", email="vera@example.com", given_name="Vera", family_name="Director")
    idp.person("mallory", email="mallory@example.com", given_name="Mal", family_name="Lory")
    yield idp
    sso.forget_provider()


@pytest.fixture
def signer(provider: Provider) -> tuple[Client, User]:
    """Vera, signed in with the provider, a director."""
    client = Client()
    assert sign_in(client, provider, "vera").status_code == 302
    vera = User.objects.get(email="vera@example.com")
    vera.groups.add(GroupFactory(name="director"))
    return client, vera


@pytest.fixture
def task(signer):
    publish(signed_flow())
    requester = UserFactory(username="rita")
    instance = instance_start(
        definition_key="capex", context={}, actor=requester, now=timezone.now()
    )
    return instance.tasks.get()


def reauth(client: Client, provider: Provider, task, username: str):
    start = f"/accounts/oidc/authenticate/?reauth=1&next=/tasks/{task.pk}/"
    flow = provider_answer(client, provider, username, start=start)
    query = flow.authorize_query
    assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
    return client.get(flow.callback)


def approve(client: Client, task):
    return client.post(f"/tasks/{task.pk}/decide/", {"decision": "APPROVE"})


def test_signing_asks_for_a_fresh_sign_in_at_the_provider(provider, signer, task) -> None:
    client, _ = signer
    page = client.get(f"/tasks/{task.pk}/").content.decode()
    assert 'id="reauth"' in page and 'type="password"' not in page
    refused = approve(client, task)
    assert refused.status_code == 400
    assert "Sign in again at the identity provider to sign" in refused.content.decode()
    back = reauth(client, provider, task, "vera")
    assert back.status_code == 302 and back["Location"] == f"/tasks/{task.pk}/"
    assert 'id="signed-in-again"' in client.get(f"/tasks/{task.pk}/").content.decode()
    assert approve(client, task).status_code == 302
    signature = Decision.objects.get(task=task).signature
    assert signature["method"] == "provider"
    assert signature["name"] == "Vera Director" and signature["meaning"] == MEANING


def test_one_fresh_sign_in_signs_one_decision(provider, signer, task) -> None:
    client, _ = signer
    reauth(client, provider, task, "vera")
    approve(client, task)
    other = instance_start(
        definition_key="capex",
        context={},
        actor=User.objects.get(username="rita"),
        now=timezone.now(),
    ).tasks.get()
    assert approve(client, other).status_code == 400
    assert not Decision.objects.filter(task=other).exists()


def test_signing_in_again_as_someone_else_is_refused(provider, signer, task) -> None:
    client, vera = signer
    sign_in(Client(), provider, "mallory")  # Mallory has an account here too
    refused = reauth(client, provider, task, "mallory")
    assert refused.status_code == 403
    assert "as someone else" in refused.content.decode()
    assert client.session["_auth_user_id"] == str(vera.pk)  # still Vera, not Mallory
    assert approve(client, task).status_code == 400
    assert not Decision.objects.exists()


def test_a_stale_sign_in_does_not_sign(provider, signer, task, monkeypatch) -> None:
    client, _ = signer
    reauth(client, provider, task, "vera")
    later = time.time() + sso.FRESH_SIGN_IN_SECONDS + 5
    monkeypatch.setattr(sso.time, "time", lambda: later)
    assert approve(client, task).status_code == 400
    assert not Decision.objects.exists()


def test_reauth_without_being_signed_in_is_an_ordinary_sign_in(provider) -> None:
    client = Client()
    start = client.get("/accounts/oidc/authenticate/?reauth=1")
    query = parse_qs(urlsplit(start["Location"]).query)
    assert "prompt" not in query and "max_age" not in query
