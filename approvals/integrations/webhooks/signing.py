"""Signed outgoing HTTP POSTs (X-Signoff-Signature: HMAC-SHA256 over "timestamp.body").

A receiver recomputes `v1=` + hex(HMAC-SHA256(secret, f"{timestamp}.{raw body}")) and compares
it in constant time, refusing timestamps more than a few minutes old (docs/webhooks.md). They go
through `approvals.integrations.http`: only to public addresses, never following a redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from approvals import tracing
from approvals.integrations.http import TargetRefused, webhook_opener

EXCERPT_BYTES = 2000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, *, tolerance: int = 300) -> bool:
    """What a receiver does (used by our tests as the receiver)."""
    return (
        signature_problem(secret, timestamp, body, header, tolerance=tolerance, now=time.time())
        is None
    )


def signature_problem(
    secret: str, timestamp: str, body: bytes, header: str, *, tolerance: int, now: float
) -> str | None:
    """Why a signed body is refused (a timestamp not within `tolerance` seconds of `now`, a
    signature that does not match), or None: the check of our inbound webhooks too."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return "X-Signoff-Timestamp must be the whole seconds since 1970 (Unix time)"
    if age > tolerance:
        return f"X-Signoff-Timestamp is {int(age)} s away from now; at most {tolerance} s"
    if not hmac.compare_digest(signature(secret, timestamp, body), header):
        return "X-Signoff-Signature does not match the body"
    return None


def _signed_request(
    url: str, body: bytes, *, secret: str, headers: Mapping[str, str]
) -> urllib.request.Request:
    timestamp = str(int(time.time()))
    return urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Signoff-Webhooks/1",
            "X-Signoff-Timestamp": timestamp,
            "X-Signoff-Signature": signature(secret, timestamp, body),
            # W3C trace context: the receiver's spans join the trace of what caused the call.
            **tracing.carrier(),
            **headers,
        },
    )


def post_signed(
    url: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    secret: str,
    timeout: float = 10.0,
) -> int:
    """POST and return the status; raises on a network error, a refused address (TargetRefused)
    or a non-2xx answer (HTTPError, a redirect included)."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    request = _signed_request(
        url, body, secret=secret, headers={"Idempotency-Key": idempotency_key}
    )
    try:
        with _opener().open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TargetRefused):
            raise exc.reason from None
        raise


@dataclass(frozen=True)
class Answer:
    """What came back from one POST: a status and the start of the body, or an error."""

    status: int | None
    excerpt: str
    error: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _opener() -> urllib.request.OpenerDirector:
    return webhook_opener(allow_private=settings.ALLOW_PRIVATE_WEBHOOK_TARGETS)


def send_signed(
    url: str, body: bytes, *, secret: str, headers: Mapping[str, str], timeout: float
) -> Answer:
    """POST a signed body; never raises for what the network or the receiver does."""
    request = _signed_request(url, body, secret=secret, headers=headers)
    try:
        with _opener().open(request, timeout=timeout) as response:
            return Answer(int(response.status), _excerpt(response.read(EXCERPT_BYTES)), "")
    except urllib.error.HTTPError as exc:
        try:
            excerpt = _excerpt(exc.read(EXCERPT_BYTES))
        except OSError:
            excerpt = ""
        return Answer(exc.code, excerpt, f"HTTP {exc.code} {exc.reason}")
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, bad URLs
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TargetRefused):
            return Answer(None, "", f"not sent: {reason}"[:500])
        return Answer(None, "", f"{type(exc).__name__}: {reason}"[:500])


def _excerpt(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\x00", "")
