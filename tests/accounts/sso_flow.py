"""The sign-in redirect flow without a browser: Django's test client plays Signoff's side, a
requests session plays the browser at the test provider (its login form, its redirects)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import requests
from django.test import Client

from tests.accounts.oidc_provider.server import Provider

SIGNOFF = "http://testserver"


@dataclass
class Flow:
    authorize_url: str
    callback: str  # path and query of the provider's answer at our callback
    provider_session: requests.Session

    @property
    def authorize_query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.authorize_url).query)


def provider_answer(
    client: Client, provider: Provider, username: str, start: str = "/accounts/oidc/authenticate/"
) -> Flow:
    """Start a sign-in, sign in at the provider as `username`, and return where the provider
    sends the browser back (not yet followed)."""
    start = client.get(start)
    assert start.status_code == 302, start.content
    authorize_url = start.headers["Location"]
    assert authorize_url.startswith(provider.issuer)
    browser = requests.Session()
    page = browser.get(authorize_url, timeout=10)
    assert page.url.startswith(provider.login_url), page.url
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    next_url = re.search(r'name="next" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")
    answer = browser.post(
        page.url,
        data={
            "csrfmiddlewaretoken": csrf,
            "next": next_url,
            "username": username,
            "password": f"{username}-password",
        },
        allow_redirects=False,
        timeout=10,
    )
    for _ in range(5):
        location = answer.headers.get("Location", "")
        assert answer.status_code == 302, answer.text[:500]
        if location.startswith(SIGNOFF):
            parts = urlsplit(location)
            return Flow(authorize_url, f"{parts.path}?{parts.query}", browser)
        answer = browser.get(
            requests.compat.urljoin(answer.url, location), allow_redirects=False, timeout=10
        )
    raise AssertionError("the provider never sent the browser back")


def sign_in(client: Client, provider: Provider, username: str):
    """The whole flow; the response of our callback."""
    flow = provider_answer(client, provider, username)
    return client.get(flow.callback)
