"""ASGI entry point: HTTP and WebSocket on one port (served by Daphne)."""

import os

from django.core.asgi import get_asgi_application

from workflow_app.database import configure_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_app.settings")
configure_process("web")  # before the first connection: the web's time limits
# Before Django loads its middleware and connects: the instrumentations wrap both.
from workflow_app.observability.tracing import setup as setup_tracing  # noqa: E402

setup_tracing("web")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from approvals.api.waiting import with_waits  # noqa: E402
from workflow_app.origins import SiteOriginValidator  # noqa: E402
from workflow_app.overload import RequestLine  # noqa: E402
from workflow_app.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Long-polls and event streams hold no database connection while they wait, so they
        # do not queue in the request line that guards the pool (approvals/api/waiting.py).
        "http": with_waits(
            RequestLine(
                django_asgi_app,
                limit=settings.WEB_MAX_REQUESTS,
                timeout=settings.WEB_QUEUE_TIMEOUT_SECONDS,
            )
        ),
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
