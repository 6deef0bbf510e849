"""Helpers for tests that start real processes (manage.py, a Celery worker, the launcher)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
EMBEDDED_DATABASE = "signoff.sqlite3"  # under var/: the embedded default's database

# Variables that choose a configuration: a child process starts from none of them, so a test
# gets the mode it asks for whatever the suite itself runs on (PostgreSQL in CI, say).
CONFIG_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "TIME_ZONE",
    "SIGNOFF_VAR_DIR",
    "SLA_SWEEP_SECONDS",
    "ACTION_LEASE_SECONDS",
    "ACTION_REVIEW_ROLE",
    "CELERY_QUEUE",
    "WEBHOOK_SECRET",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS",
    "HEARTBEAT_SECONDS",
    "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_HSTS_SECONDS",
    "LOG_LEVEL",
    "NOTIFY_POLL_MS",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "SLACK_MAX_ATTEMPTS",
    "AXES_FAILURE_LIMIT",
    "AXES_COOLOFF_MINUTES",
    "TRUSTED_PROXY_COUNT",
    "DJANGO_SETTINGS_MODULE",
    "PROMETHEUS_MULTIPROC_DIR",
    "METRICS_TOKEN",
    "METRICS_REFRESH_SECONDS",
    "LOG_FORMAT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "INBOUND_EMAIL_SECRET",
    "INBOUND_EMAIL_DOMAIN",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_SCOPES",
    "OIDC_GROUPS_CLAIM",
    "OIDC_ALLOWED_DOMAINS",
    "OIDC_TIMEOUT_SECONDS",
    "LOCAL_LOGIN",
    "BREAK_GLASS_USER",
)


def child_env(var_dir: Path, **overrides: str | None) -> dict[str, str]:
    """The environment for a child process in the embedded default, with `var_dir` as var/."""
    env = {key: value for key, value in os.environ.items() if key not in CONFIG_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="workflow_app.settings",
        SIGNOFF_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_MIGRATED_EMBEDDED: list[Path] = []


def migrate(env: dict[str, str]) -> None:
    """`manage.py migrate` for a child's environment. The embedded database (SQLite under the
    child's var/) is migrated once per test process and copied after that: a copy takes
    milliseconds, migrating from nothing several seconds."""
    if env.get("DATABASE_URL"):
        done = manage("migrate", "--noinput", env=env)
        assert done.returncode == 0, done.stderr
        return
    if not _MIGRATED_EMBEDDED:
        template = Path(tempfile.mkdtemp(prefix="signoff-migrated-"))
        done = manage("migrate", "--noinput", env={**env, "SIGNOFF_VAR_DIR": str(template)})
        assert done.returncode == 0, done.stderr
        _MIGRATED_EMBEDDED.append(template / EMBEDDED_DATABASE)
    var_dir = Path(env["SIGNOFF_VAR_DIR"])
    var_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_MIGRATED_EMBEDDED[0], var_dir / EMBEDDED_DATABASE)
