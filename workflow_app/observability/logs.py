"""Structured logs (LOG_FORMAT=json): one JSON object a line, with the request id, user id,
instance id and trace id of what the line is about, from web and worker alike.

- `ContextFilter` (on the console handler, both formats) puts those fields on every record.
- `RequestContext` middleware gives each request an id (the caller's `X-Request-ID` when it is
  a plain token, else a new one) and answers it in `X-Request-ID`.
- The Celery signals below carry the request id and user id of whatever queued a task in the
  task's headers, and bind them in the worker while it runs (a task queued by beat gets its own
  task id).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from approvals import logcontext

access_logger = logging.getLogger("signoff.access")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it cannot smuggle anything into a log line.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
FIELDS = ("request_id", "user_id", "instance_id", "trace_id", "span_id")


def _trace_ids() -> tuple[str | None, str | None]:
    try:
        from opentelemetry import trace
    except ImportError:  # tracing not installed
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _user_of(request: Any) -> int | None:
    """The signed-in user's id, without making authentication happen for a log line: only once
    the middleware's lazy user (or DRF's, which sets request.user) has been resolved."""
    user = request.__dict__.get("user") if request is not None else None
    if user is None:
        return None
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty or not getattr(wrapped, "is_authenticated", False):
        return None
    return wrapped.pk


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = logcontext.request_id.get()
        record.user_id = logcontext.user_id.get() or _user_of(logcontext.current_request.get())
        record.instance_id = logcontext.instance_id.get()
        record.trace_id, record.span_id = _trace_ids()
        return True


# What must never reach a log: our tokens' shapes, a bearer credential, the query of a URL
# (signed links and receivers' tokens travel there), and the configured secrets themselves.
_PATTERNS = (
    (re.compile(r"\bsgf_[A-Za-z0-9_-]{8,}"), "sgf_[redacted]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]+"), "xox-[redacted]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"((?:https?|wss?)://[^\s\"'?#<>]+)\?[^\s\"'#<>]+"), r"\1?[redacted]"),
    (
        re.compile(r"(?i)\b(sessionid|csrftoken|token|signature|sig|code|state)=[^\s&\"';,]+"),
        r"\1=[redacted]",
    ),
)
_SECRET_SETTINGS = (
    "SECRET_KEY",
    "AUDIT_CHAIN_KEY",
    "AUDIT_SIGNING_KEY",
    "WEBHOOK_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "METRICS_TOKEN",
    "OIDC_CLIENT_SECRET",
)
_secrets: list[str] | None = None


def _configured_secrets() -> list[str]:
    global _secrets
    if _secrets is None:
        from django.conf import settings

        values = [getattr(settings, name, "") for name in _SECRET_SETTINGS]
        values += list(getattr(settings, "AUDIT_CHAIN_PREVIOUS_KEYS", []))
        # A key-encryption key is logged neither as its entry nor as its base64 alone.
        for entry in getattr(settings, "FIELD_ENCRYPTION_KEYS", []):
            values += [entry, entry.partition(":")[2]]
        # Longest first, so that a secret containing another is masked whole.
        _secrets = sorted({v for v in values if isinstance(v, str) and len(v) >= 8}, key=len)[::-1]
    return _secrets


def redact(text: str) -> str:
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, "[redacted]")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ConsoleFormatter(logging.Formatter):
    """The default, for a terminal: time, level, logger, message (redacted)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(_JsonFormatter):
    """time, level, logger, message, the context fields, then any extra of the call."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "process", *FIELDS],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            **kwargs,
        )

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def new_request_id(given: str | None) -> str:
    return given if given and _ACCEPTABLE_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContext:
    """First in MIDDLEWARE: every line logged while the request runs carries its id, up to
    Django's own "Not Found: ..." line after the middleware; cleared when the request ends
    (request_finished; under ASGI each request has a context of its own anyway)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        self._bind(request)
        return self._answer(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        self._bind(request)
        return self._answer(request, await self.get_response(request))

    def _bind(self, request: HttpRequest) -> None:
        request.started_at = time.perf_counter()
        request.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
        logcontext.request_id.set(request.request_id)
        logcontext.current_request.set(request)

    def _answer(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response[REQUEST_ID_HEADER] = request.request_id
        # The access log, in place of the server's: the path without its query (signed links
        # and tokens travel there), with the request's context like every other line.
        access_logger.info(
            "%s %s %s %.0fms",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - request.started_at) * 1000,
        )
        return response


def _request_finished(**_: Any) -> None:
    logcontext.clear()


request_finished.connect(_request_finished, dispatch_uid="signoff-log-context")


# ----- Celery: the context travels with the task


def connect_celery_signals() -> None:
    from celery.signals import before_task_publish, task_postrun, task_prerun

    before_task_publish.connect(_stamp_headers, weak=False)
    task_prerun.connect(_bind_task, weak=False)
    task_postrun.connect(_clear_task, weak=False)


def _stamp_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id = logcontext.request_id.get()
    user_id = logcontext.user_id.get() or _user_of(logcontext.current_request.get())
    if request_id:
        headers["signoff_request_id"] = request_id
    if user_id:
        headers["signoff_user_id"] = user_id


def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    logcontext.clear()
    request = getattr(task, "request", None)
    logcontext.request_id.set(getattr(request, "signoff_request_id", None) or task_id)
    logcontext.user_id.set(getattr(request, "signoff_user_id", None))


def _clear_task(**_: Any) -> None:
    logcontext.clear()
