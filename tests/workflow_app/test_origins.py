"""The WebSocket handshake accepts pages of this site only: the Origin's scheme, host and port
must be SITE_URL's (or one of CSRF_TRUSTED_ORIGINS); with DEBUG on, also the address the socket
itself was opened on. Through the real ASGI application."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from approvals.notify.consumers import CLOSE_UNAUTHENTICATED
from workflow_app.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def production(settings) -> None:
    settings.DEBUG = False
    settings.SITE_URL = "https://signoff.example.com"
    settings.ALLOWED_HOSTS = ["signoff.example.com", ".partner.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://signoff.example.com", "https://*.partner.example"]


def handshake(origin: bytes | None, host: bytes = b"signoff.example.com") -> str:
    """ "refused" at the handshake, or what the application did once past the origin check
    (an anonymous visitor is told 4401)."""

    async def scenario() -> str:
        headers = [(b"host", host)]
        if origin is not None:
            headers.append((b"origin", origin))
        communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
        connected, _ = await communicator.connect()
        if not connected:
            return "refused"
        closed = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return f"closed {closed.get('code')}"

    return async_to_sync(scenario)()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://signoff.example.com",  # another scheme of the site's host
        b"https://signoff.example.com:8443",  # another port
        b"http://signoff.example.com:443",
        b"https://evil.example",
        b"https://signoff.example.com.evil.example",
        b"https://partner.example.evil.example",
        b"null",
        None,
    ],
)
def test_a_page_of_another_origin_is_refused_at_the_handshake(production, origin) -> None:
    assert handshake(origin) == "refused"


@pytest.mark.parametrize(
    "origin",
    [
        b"https://signoff.example.com",
        b"https://signoff.example.com:443",
        b"https://a.partner.example",
    ],
)
def test_the_sites_own_origins_pass(production, origin) -> None:
    assert handshake(origin) == f"closed {CLOSE_UNAUTHENTICATED}"


def test_with_debug_on_the_address_the_socket_was_opened_on_passes(settings) -> None:
    """`launch.py run --port 8001` opened at http://127.0.0.1:8001 needs no SITE_URL; another
    port of the same host does not pass."""
    settings.DEBUG = True
    settings.SITE_URL = "http://localhost:8000"
    settings.CSRF_TRUSTED_ORIGINS = [settings.SITE_URL]
    here = b"127.0.0.1:8001"
    assert handshake(b"http://127.0.0.1:8001", host=here) == f"closed {CLOSE_UNAUTHENTICATED}"
    assert handshake(b"http://127.0.0.1:9999", host=here) == "refused"
    assert handshake(b"https://127.0.0.1:8001", host=here) == "refused"
    assert handshake(b"http://localhost:8000", host=here) == f"closed {CLOSE_UNAUTHENTICATED}"


def test_with_debug_off_only_the_site_url_passes(production) -> None:
    here = b"127.0.0.1:8001"
    assert handshake(b"http://127.0.0.1:8001", host=here) == "refused"
