"""Every page sends the Content-Security-Policy; what it allows is what the pages need and no more
(the browser tests check that the pages keep to it: tests/browser/test_csp.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from tests.pages import ANONYMOUS_PAGES, admin_pages, reviewer_pages, site_with_a_request
from tests.processes import child_env, manage

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self' ws://localhost:8000",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

PRINT_CONNECT_SRC = (
    "from django.conf import settings;"
    "print(*settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src'])"
)


def directives(header: str) -> dict[str, str]:
    parsed = {}
    for directive in header.split(";"):
        name, _, sources = directive.strip().partition(" ")
        parsed[name] = sources
    return parsed


def assert_policy(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, url
    assert directives(response.headers["Content-Security-Policy"]) == POLICY, url


def test_every_page_sends_the_policy() -> None:
    site = site_with_a_request()
    anonymous, reviewer, admin = Client(), Client(), Client()
    reviewer.force_login(site.reviewer)
    admin.force_login(site.admin)
    for url in ANONYMOUS_PAGES:
        assert_policy(anonymous, url)
    for url in reviewer_pages(site):
        assert_policy(reviewer, url)
    for url in admin_pages(site):
        assert_policy(admin, url)


def test_answers_that_are_not_pages_carry_it_too(client: Client, reviewer) -> None:
    # A redirect to sign in, an API answer and a refusal: a browser may render any of them.
    assert "Content-Security-Policy" in client.get("/inbox/").headers
    assert "Content-Security-Policy" in client.get("/api/v1/tasks/").headers
    client.force_login(reviewer)
    assert client.get("/admin/").status_code == 302
    assert "Content-Security-Policy" in client.post("/inbox/bulk/").headers


@pytest.mark.slow
def test_websockets_are_allowed_to_the_site_s_own_address(tmp_path: Path) -> None:
    env = child_env(tmp_path, SITE_URL="https://signoff.example.com")
    done = manage("shell", "--no-imports", "-c", PRINT_CONNECT_SRC, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["'self'", "wss://signoff.example.com"]
