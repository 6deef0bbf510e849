"""What each kind of process may do with PostgreSQL: the web's statements and idle
transactions have a time limit, the worker's statements a longer one, commands (migrate) none;
a worker child holds one connection. Read from real processes' connections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection

from tests.processes import child_env, manage

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow, pytest.mark.django_db]

SHOW = """
import json
{setup}
from django.db import connection
from django.db.utils import OperationalError
values = {{}}
with connection.cursor() as cursor:
    for name in ("statement_timeout", "idle_in_transaction_session_timeout", "application_name"):
        cursor.execute("SELECT current_setting(%s)", [name])
        values[name] = cursor.fetchone()[0]
    try:
        cursor.execute("SELECT pg_sleep(%s)", [{sleep}])
        values["slow_statement"] = "finished"
    except OperationalError as exc:
        values["slow_statement"] = type(exc.__cause__).__name__
pool = connection.settings_dict["OPTIONS"].get("pool") or {{}}
values["pool_max_size"] = pool.get("max_size")
print("SETTINGS=" + json.dumps(values))
"""
AS_WEB = "import workflow_app.asgi"
AS_WORKER = """
import django
django.setup()
from celery.signals import worker_init, worker_process_init
from workflow_app.celery import app
worker_init.send(sender=None)
worker_process_init.send(sender=None)
"""


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("statement timeouts are PostgreSQL settings")


def settings_seen(tmp_path: Path, setup: str, sleep: float = 0, **env: str) -> dict:
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    child = child_env(tmp_path, DATABASE_URL=url, DEBUG="true", **env)
    done = manage("shell", "-c", SHOW.format(setup=setup, sleep=sleep), env=child)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SETTINGS="))
    return json.loads(line.removeprefix("SETTINGS="))


def test_the_web_process_limits_statements_and_idle_transactions(tmp_path: Path) -> None:
    seen = settings_seen(tmp_path, AS_WEB)
    assert seen["statement_timeout"] == "30s"
    assert seen["idle_in_transaction_session_timeout"] == "1min"
    assert seen["application_name"] == "signoff web"
    assert seen["pool_max_size"] == 10


def test_a_web_statement_past_its_limit_is_cancelled(tmp_path: Path) -> None:
    seen = settings_seen(tmp_path, AS_WEB, sleep=3, DATABASE_STATEMENT_TIMEOUT_SECONDS="1")
    assert seen["statement_timeout"] == "1s"
    assert seen["slow_statement"] == "QueryCanceled"


def test_the_limits_come_from_the_environment(tmp_path: Path) -> None:
    seen = settings_seen(
        tmp_path,
        AS_WEB,
        DATABASE_STATEMENT_TIMEOUT_SECONDS="0",
        DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS="90",
        DATABASE_POOL_SIZE="4",
    )
    assert seen["statement_timeout"] == "0"  # 0: no limit
    assert seen["idle_in_transaction_session_timeout"] == "90s"
    assert seen["pool_max_size"] == 4


def test_a_worker_child_has_a_longer_statement_limit_and_one_connection(tmp_path: Path) -> None:
    seen = settings_seen(tmp_path, AS_WORKER)
    assert seen["statement_timeout"] == "10min"
    assert seen["idle_in_transaction_session_timeout"] == "1min"
    assert seen["application_name"] == "signoff worker"
    assert seen["pool_max_size"] == 1


def test_commands_such_as_migrate_have_no_statement_limit(tmp_path: Path) -> None:
    seen = settings_seen(tmp_path, "")
    assert seen["statement_timeout"] == "0"
    assert seen["idle_in_transaction_session_timeout"] == "0"


@pytest.mark.parametrize(
    "variable",
    [
        "DATABASE_POOL_SIZE",
        "DATABASE_POOL_TIMEOUT_SECONDS",
        "DATABASE_STATEMENT_TIMEOUT_SECONDS",
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS",
        "WORKER_STATEMENT_TIMEOUT_SECONDS",
        "WORKER_CONCURRENCY",
    ],
)
def test_a_malformed_limit_stops_the_process_naming_it(tmp_path: Path, variable: str) -> None:
    result = manage("check", env=child_env(tmp_path, **{variable: "-1"}))
    assert result.returncode != 0
    assert f"{variable}='-1'" in result.stderr
