"""GET /healthz: is this process able to serve? For load balancers, uptime checks and people.

200 when the database and the broker answer, 503 otherwise. The worker's last heartbeat is
reported for information only: a stopped worker delays reminders and automated steps but does not
make this web process unable to serve, and restarting the web process would not fix it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu import Connection

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2
FILESYSTEM_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def _failure(check: str, exc: BaseException) -> dict[str, Any]:
    logger.warning("health check %s failed", check, exc_info=exc)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return {"ok": False, "error": f"{type(exc).__name__}: {message}"[:300]}


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return _failure("database", exc)
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    url: str = settings.CELERY_BROKER_URL
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    try:
        if url.startswith("filesystem:"):
            # Nothing listens for the filesystem transport: it works when every process can
            # write its folders, so that is what is probed, by really writing a file.
            for key in FILESYSTEM_FOLDERS:
                with tempfile.NamedTemporaryFile(dir=Path(options[key]), prefix="healthz-"):
                    pass
        else:
            options.update(
                socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS
            )
        with Connection(url, transport_options=options) as broker:
            broker.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_SECONDS
            )
    except Exception as exc:  # every transport raises errors of its own kinds
        return _failure("broker", exc)
    return {"ok": True, "transport": url.split(":", 1)[0]}


def worker_heartbeat() -> dict[str, Any]:
    from approvals.models import Heartbeat

    try:
        beat = Heartbeat.objects.filter(source="beat").first()
    except DatabaseError as exc:
        return {"last_seen": None, "error": f"{type(exc).__name__}"}
    if beat is None:
        return {"last_seen": None, "expected_every_seconds": settings.HEARTBEAT_SECONDS}
    return {
        "last_seen": beat.seen_at.isoformat(),
        "age_seconds": round((timezone.now() - beat.seen_at).total_seconds(), 1),
        "expected_every_seconds": settings.HEARTBEAT_SECONDS,
    }


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "error", "checks": checks}
    body["worker"] = worker_heartbeat() if checks["database"]["ok"] else {"last_seen": None}
    return JsonResponse(body, status=200 if healthy else 503)
