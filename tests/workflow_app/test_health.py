"""/healthz: 200 when the database and the broker answer, 503 with the reason when not.

The failure cases run in a child process with a really unreachable PostgreSQL or Redis (port 1
on this machine): nothing of our own is mocked.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import Heartbeat
from tests.processes import child_env, manage

CALL_HEALTHZ = (
    "import json; from django.test import Client; r = Client().get('/healthz'); "
    "print(json.dumps({'status_code': r.status_code, 'body': r.json()}))"
)


def healthz_in_child(var_dir: Path, **env: str | None) -> tuple[int, dict[str, Any]]:
    # DEBUG on keeps the child's ALLOWED_HOSTS accepting the test client's "testserver".
    result = manage("shell", "-c", CALL_HEALTHZ, env=child_env(var_dir, DEBUG="true", **env))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer["status_code"], answer["body"]


@pytest.mark.django_db
def test_healthy(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_needs_no_login_and_no_trailing_slash(client: Client) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz/").status_code == 404


@pytest.mark.django_db
def test_only_reads(client: Client) -> None:
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


@pytest.mark.django_db
def test_reports_the_worker_heartbeat_without_judging_it(client: Client) -> None:
    body = client.get("/healthz").json()
    assert body["worker"]["last_seen"] is None
    assert body["status"] == "ok"

    Heartbeat.objects.create(source="beat", seen_at=timezone.now() - timedelta(hours=3))
    body = client.get("/healthz").json()
    assert body["worker"]["age_seconds"] >= 3 * 3600
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_filesystem_broker_without_its_folder_is_unhealthy(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    options["data_folder_in"] = str(tmp_path / "missing")
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["broker"]["ok"] is False
    assert "FileNotFoundError" in body["checks"]["broker"]["error"]


@pytest.mark.slow
def test_unreachable_database_is_503(tmp_path: Path) -> None:
    status, body = healthz_in_child(
        tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere"
    )
    assert status == 503
    assert body["status"] == "error"
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["error"]
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.slow
def test_unreachable_broker_is_503(tmp_path: Path) -> None:
    status, body = healthz_in_child(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")
    assert status == 503
    assert body["status"] == "error"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.slow
def test_real_redis_broker_is_healthy(tmp_path: Path) -> None:
    status, body = healthz_in_child(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15")
    assert (status, body["checks"]["broker"]) == (200, {"ok": True, "transport": "redis"})
