"""What the PostgreSQL benchmarks share: the database from DATABASE_URL, created if missing,
and Django set up for timing (no query log)."""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import unquote, urlsplit


def database_url(script: str) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql"}:
        sys.exit(
            f"{script} measures PostgreSQL only: set "
            "DATABASE_URL=postgres://user@host:port/dbname (got "
            f"{url or 'nothing'!r})."
        )
    return url


def conninfo(url: str, dbname: str | None = None) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or "") or None,
        "dbname": dbname or unquote(parts.path.lstrip("/")),
    }


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = conninfo(url)["dbname"]
    with psycopg.connect(**conninfo(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def recreate_database(url: str) -> None:
    """An empty database for a run whose figures must not depend on earlier runs' rows. Only
    names containing "bench" are dropped, and not while another session is connected to it."""
    import psycopg
    from psycopg import sql

    name = conninfo(url)["dbname"]
    if "bench" not in name:
        sys.exit(f"refusing to drop database {name!r}: its name has no 'bench'")
    with psycopg.connect(**conninfo(url, "postgres"), autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.errors.ObjectInUse:
            sys.exit(f"database {name!r} is in use by another session: not dropped")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(*, server_side_binding: bool = False) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "workflow_app.settings"
    # DEBUG at import spares a SECRET_KEY and gives the test client's host and plain static
    # storage; it is switched off again so that Django does not log every query of the timed
    # runs (CaptureQueriesContext still records where asked).
    os.environ["DEBUG"] = "true"
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    settings.DEBUG = False
    if server_side_binding:
        # psycopg then prepares statements it sees five times, as a raw loop's connection
        # does; Django's default (client-side binding) has every statement parsed and planned.
        connections["default"].settings_dict["OPTIONS"]["server_side_binding"] = True
