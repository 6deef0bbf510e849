"""The embedded default runs with DEBUG on but shows the site's own 404 and 500 pages; only a
developer who set DEBUG=true gets Django's technical pages. /api/ keeps its JSON errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.test import Client

from tests.processes import child_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded(settings):
    """What `launch.py run` gives with nothing set: DEBUG on, not asked for."""
    settings.DEBUG = True
    settings.TECHNICAL_ERROR_PAGES = False
    settings.ROOT_URLCONF = "tests.approvals.api.failing_urls"


@pytest.fixture
def client_of(requester):
    client = Client(raise_request_exception=False)
    client.force_login(requester)
    return client


def test_an_unknown_page_is_the_friendly_404(embedded, client_of):
    response = client_of.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert 'id="error-page"' in body and "Back to your inbox" in body
    assert "URLconf" not in body and "admin/" not in body


def test_a_hidden_request_is_the_friendly_404(embedded, client_of):
    response = client_of.get("/requests/999999/")
    assert response.status_code == 404
    assert 'id="error-page"' in response.content.decode()
    assert "Raised by" not in response.content.decode()


def test_a_crash_is_the_friendly_500(embedded, client_of):
    response = client_of.get("/broken/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "RuntimeError" not in body and "Traceback" not in body


def test_debug_asked_for_keeps_the_technical_pages(settings, client_of):
    settings.DEBUG = True
    settings.TECHNICAL_ERROR_PAGES = True
    response = client_of.get("/no-such-page/")
    assert response.status_code == 404
    assert "URLconf" in response.content.decode()


def test_debug_off_uses_the_friendly_pages_too(settings, client_of):
    settings.DEBUG = False
    assert 'id="error-page"' in client_of.get("/no-such-page/").content.decode()


@pytest.mark.parametrize(
    ("debug", "expected"), [(None, "True False"), ("true", "True True"), ("false", "False False")]
)
def test_only_an_explicit_debug_turns_the_technical_pages_on(debug, expected, tmp_path):
    env = child_env(tmp_path, DEBUG=debug, SECRET_KEY="x" * 50, AUDIT_CHAIN_KEY="k" * 40)
    code = "from django.conf import settings;print(settings.DEBUG, settings.TECHNICAL_ERROR_PAGES)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == expected
