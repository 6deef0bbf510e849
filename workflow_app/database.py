"""What each kind of process may do with PostgreSQL, set when it starts, before it connects.

- web (asgi.py, wsgi.py): a statement may run DATABASE_STATEMENT_TIMEOUT_SECONDS (lock waits
  included), a transaction may sit idle DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: a slow
  query or a stuck request cannot hold row locks, or a pooled connection, for long.
- worker (celery.py): statements may run WORKER_STATEMENT_TIMEOUT_SECONDS, since a sweep's
  batch legitimately takes longer than a request; each child process (prefork) runs one task
  at a time in one thread, so its pool holds one connection.
- anything else (migrate, shell, a command): no limit, as PostgreSQL's defaults.

The limits are startup parameters of each connection (libpq `options`), so they cost no
round trip, and `application_name` tells the processes apart in pg_stat_activity.
"""

from __future__ import annotations

import re
from typing import Literal

from django.conf import settings

Role = Literal["web", "worker"]


def configure_process(role: Role) -> None:
    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        return
    statement = (
        settings.DATABASE_STATEMENT_TIMEOUT_SECONDS
        if role == "web"
        else settings.WORKER_STATEMENT_TIMEOUT_SECONDS
    )
    options = database.setdefault("OPTIONS", {})
    parameters = {
        "statement_timeout": f"{statement}s",
        "idle_in_transaction_session_timeout": (
            f"{settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS}s"
        ),
    }
    # Idempotent: a second call (the test suite imports asgi.py too) replaces, never appends.
    kept = [
        part
        for part in re.split(r"\s+(?=-c\s)", options.get("options", "").strip())
        if part and not any(re.match(rf"-c\s+{name}=", part) for name in parameters)
    ]
    options["options"] = " ".join(
        [*kept, *(f"-c {name}={value}" for name, value in parameters.items())]
    )
    options["application_name"] = f"signoff {role}"


def limit_pool(connections: int) -> None:
    """At most `connections` pooled connections in this process (a worker child: one)."""
    pool = settings.DATABASES["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["max_size"] = connections
        pool["min_size"] = min(pool.get("min_size", 1), connections)
