"""Signed outgoing HTTP POSTs (X-Signoff-Signature: HMAC-SHA256 over "timestamp.body")."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Mapping
from typing import Any


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def post_signed(
    url: str,
    payload: Mapping[str, Any],
    *,
    idempotency_key: str,
    secret: str,
    timeout: float = 10.0,
) -> int:
    """POST and return the status; raises on a network error or a non-2xx answer."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Signoff-Timestamp": timestamp,
            "X-Signoff-Signature": signature(secret, timestamp, body),
            "Idempotency-Key": idempotency_key,
        },
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)
