"""Which pages may open the WebSocket: those of SITE_URL and CSRF_TRUSTED_ORIGINS, scheme, host
and port alike (a page on another port or scheme of the site's host is another origin and could
read what the socket pushes). Channels' OriginValidator compares the three; a trusted origin
written as Django spells a wildcard (`https://*.example.com`) is given to it as Channels spells
one (`https://.example.com`).

With DEBUG on, the address the socket was opened on passes too (its Host header, with ws → http),
so `launch.py run --port 8001` at http://127.0.0.1:8001 needs no SITE_URL; another port or
scheme of that host still does not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import validate_host


def site_origins() -> list[str]:
    origins = [settings.SITE_URL, *settings.CSRF_TRUSTED_ORIGINS]
    return sorted({origin.replace("://*.", "://.").rstrip("/") for origin in origins})


class SiteOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        self.application = application

    @property
    def allowed_origins(self) -> list[str]:  # read at each handshake: the settings may change
        return site_origins()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if settings.DEBUG and _opened_here(scope):
            return await self.application(scope, receive, send)
        return await super().__call__(scope, receive, send)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _opened_here(scope: dict[str, Any]) -> bool:
    """The Origin is the address of this very socket: same scheme, host and port."""
    origin, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin or not host:
        return False
    parsed = urlparse(origin)
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    hostname = urlparse(f"//{host}").hostname or ""
    return (
        parsed.scheme == scheme
        and parsed.netloc.lower() == host.lower()
        and validate_host(hostname, settings.ALLOWED_HOSTS)
    )
