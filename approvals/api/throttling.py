"""Per-user request rates, counted in the shared "api" cache (Redis in production).

When the shared cache does not answer, the counts are kept in this process's memory instead,
so the API keeps serving, still throttled (per process rather than across them), while Redis
is away. One warning says so when it starts, one line when the shared cache answers again;
meanwhile the shared cache is tried again every RETRY_SECONDS, not at every request (a Redis
that drops packets would otherwise hold each request for its connection timeout).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import UserRateThrottle

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


class _Counts:
    """Where the counts are kept: the shared cache, or this process's memory while the shared
    one fails."""

    def __init__(self) -> None:
        self.local = LocMemCache("signoff-api-throttle-fallback", {})
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._retry_at = 0.0

    def cache(self) -> BaseCache:
        if self._failing_since is not None and time.monotonic() < self._retry_at:
            return self.local
        return caches["api"]

    def shared_failed(self, error: Exception) -> None:
        with self._lock:
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
                logger.warning(
                    "API throttling: the shared cache does not answer (%s: %s); counting in "
                    "this process's memory until it does",
                    type(error).__name__,
                    error,
                )
            self._retry_at = now + RETRY_SECONDS

    def shared_answered(self) -> None:
        if self._failing_since is None:
            return
        with self._lock:
            if self._failing_since is not None:
                logger.info(
                    "API throttling: the shared cache answers again after %.0f s",
                    time.monotonic() - self._failing_since,
                )
                self._failing_since = None


counts = _Counts()


class _SharedCacheThrottle(UserRateThrottle):
    setting = ""

    def __init__(self) -> None:
        super().__init__()
        self._cache: BaseCache | None = None

    @property
    def cache(self) -> BaseCache:  # type: ignore[override]
        return self._cache if self._cache is not None else counts.cache()

    def get_rate(self) -> str:
        # Read at each request rather than frozen at import, so settings changes apply.
        return str(getattr(settings, self.setting))

    def allow_request(self, request: Any, view: Any) -> bool:
        self._cache = counts.cache()
        if self._cache is counts.local:
            return super().allow_request(request, view)
        try:
            allowed = super().allow_request(request, view)
        except Exception as error:  # the shared cache, whatever its backend raises
            counts.shared_failed(error)
            self._cache = counts.local
            return super().allow_request(request, view)
        counts.shared_answered()
        return allowed


class WriteThrottle(_SharedCacheThrottle):
    """Requests that change something (POST)."""

    scope = "api_write"
    setting = "API_WRITE_RATE"


class ReadThrottle(_SharedCacheThrottle):
    scope = "api_read"
    setting = "API_READ_RATE"


class AskThrottle(_SharedCacheThrottle):
    """Asks (POST /api/v1/asks/), counted per API token: one runaway agent cannot flood its
    account's other tokens, nor the reviewers."""

    scope = "api_ask"
    setting = "ASK_RATE"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token = getattr(request, "auth", None)
        ident = f"token-{token.pk}" if getattr(token, "pk", None) else None
        if ident is None:
            return super().get_cache_key(request, view)
        return self.cache_format % {"scope": self.scope, "ident": ident}
