"""What every log line of this request or task is about: its request id, user and instance.

Context variables, so that each request (a thread or a task of its own under ASGI) and each
Celery task sees its own. The web's middleware and the worker's task signals bind and clear
them (workflow_app/observability/logs.py); the engine binds the instance it works on. The log
filter reads them into each record.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

request_id: ContextVar[str | None] = ContextVar("signoff_request_id", default=None)
user_id: ContextVar[int | None] = ContextVar("signoff_user_id", default=None)
instance_id: ContextVar[int | None] = ContextVar("signoff_instance_id", default=None)
# The request itself, whose user is read only once authentication has resolved it.
current_request: ContextVar[Any] = ContextVar("signoff_request", default=None)


def bind_instance(pk: int | None) -> None:
    instance_id.set(pk)


def clear() -> None:
    for var in (request_id, user_id, instance_id, current_request):
        var.set(None)
