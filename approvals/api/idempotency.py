"""`Idempotency-Key` on POST: a retry gets the first answer instead of making a second change.

Scope: one user, one endpoint (method and path). The same key with the same body replays the
stored answer (header `Idempotent-Replayed: true`); with a different body it is a 409. Only
successful answers are stored: a refused request changed nothing, so running it again is safe
and may now succeed. Keys are kept IDEMPOTENCY_KEY_HOURS hours (a beat task purges older ones).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from approvals.api.errors import IdempotencyConflict
from approvals.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: UUIDs, ULIDs and "order-123:attempt" all fit.
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def request_hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(
    request: Request, now: datetime, handler: Callable[[], Response], *, body: Any = None
) -> Response:
    """Run `handler` (which calls one service) under the request's Idempotency-Key, if any.
    `body`: what identifies the request when its data is not plain JSON (an uploaded file's
    hash rather than its name)."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if not _KEY.match(key):
        raise exceptions.ValidationError(
            {HEADER: ["Use 1 to 255 printable ASCII characters without spaces."]}
        )
    endpoint = f"{request.method} {request.path}"[:255]
    digest = request_hash(request.data if body is None else body)
    with transaction.atomic():
        record = _claim(request, key, endpoint, digest, now)
        if record is None:
            return _replay(request, key, endpoint, digest)
        response = handler()
        if 200 <= response.status_code < 300:
            record.status_code = response.status_code
            record.response = json.loads(json.dumps(response.data, default=str))
            record.save(update_fields=["status_code", "response"])
        else:
            transaction.set_rollback(True)
        return response


def _claim(
    request: Request, key: str, endpoint: str, digest: str, now: datetime
) -> IdempotencyRecord | None:
    """The new record for this key, or None when an earlier request holds it."""
    expired_before = now - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    # A key older than its lifetime is free again, as if the purge had run.
    IdempotencyRecord.objects.filter(
        user=request.user, endpoint=endpoint, key=key, created_at__lt=expired_before
    ).delete()
    try:
        # Inserted first, in the transaction of the change: a concurrent request with the same
        # key blocks on the unique index here until this one commits (then replays its answer)
        # or rolls back (then goes ahead itself).
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                user=request.user,
                key=key,
                endpoint=endpoint,
                request_hash=digest,
                status_code=0,
                response={},
                created_at=now,
            )
    except IntegrityError:
        return None


def _replay(request: Request, key: str, endpoint: str, digest: str) -> Response:
    record = IdempotencyRecord.objects.filter(user=request.user, endpoint=endpoint, key=key).first()
    if record is None or record.status_code == 0:
        # Purged between the insert and this read: rare; a retry runs afresh.
        raise IdempotencyConflict("This Idempotency-Key was just released; retry.")
    if record.request_hash != digest:
        raise IdempotencyConflict()
    response = Response(record.response, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def purge_expired(*, now: datetime) -> int:
    expired_before = now - timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=expired_before).delete()
    return deleted
