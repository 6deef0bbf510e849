"""One JSON shape for every error the API returns:

    {"code": "conflict", "detail": "...", "fields": {"context.amount": ["..."]},
     "current_state": "review", "accepted_events": ["APPROVE", "REJECT"]}

`fields`, `current_state` and `accepted_events` appear where they apply. Service refusals
(approvals.services.errors) map to 400 / 403 / 404 / 409; DRF's own errors keep their status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from approvals.services.errors import (
    AlreadyDecided,
    Conflict,
    InvalidInput,
    NotAllowed,
    WorkflowError,
)


class NotFound(exceptions.NotFound):
    """404 for an object the caller may not see: the same answer as for one that is missing."""


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request."


def too_large_detail() -> str:
    return (
        f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, "
        "the most this server reads."
    )


def error_body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail, **{k: v for k, v in extra.items() if v is not None}}


def workflow_error_response(exc: WorkflowError, *, hidden: bool = False) -> Response:
    """A service refusal as a response. `hidden`: a NotAllowed on an object the caller cannot
    see is a 404, so that whether it exists does not leak."""
    if isinstance(exc, NotAllowed):
        if hidden:
            return Response(error_body("not_found", "Not found."), status=404)
        return Response(error_body("not_allowed", exc.message), status=403)
    if isinstance(exc, InvalidInput):
        return Response(
            error_body("invalid", exc.message, fields=exc.field_errors or None), status=400
        )
    if isinstance(exc, Conflict):
        return Response(
            error_body(
                "already_decided" if isinstance(exc, AlreadyDecided) else "conflict",
                exc.message,
                current_state=exc.current_state,
                accepted_events=exc.accepted_events,
            ),
            status=409,
        )
    return Response(error_body("refused", exc.message), status=400)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested ValidationError detail as {"field.sub": [messages]}."""
    if isinstance(detail, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "__all__" if key == "non_field_errors" else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list) and detail and all(not isinstance(d, list | dict) for d in detail):
        return {prefix or "__all__": [str(d) for d in detail]}
    if isinstance(detail, list):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "__all__": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, WorkflowError):
        return workflow_error_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", too_large_detail()), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = error_body("invalid", "The request has errors.", fields=fields)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail) if not isinstance(detail, list | dict) else str(exc.default_detail)
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        response.data = error_body(str(code), message)
    return response
