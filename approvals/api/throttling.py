"""Per-user request rates, counted in the shared "api" cache (Redis in production)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import BaseCache, caches
from rest_framework.throttling import UserRateThrottle


class _SharedCacheThrottle(UserRateThrottle):
    setting = ""

    @property
    def cache(self) -> BaseCache:  # type: ignore[override]
        return caches["api"]

    def get_rate(self) -> str:
        # Read at each request rather than frozen at import, so settings changes apply.
        return str(getattr(settings, self.setting))


class WriteThrottle(_SharedCacheThrottle):
    """Requests that change something (POST)."""

    scope = "api_write"
    setting = "API_WRITE_RATE"


class ReadThrottle(_SharedCacheThrottle):
    scope = "api_read"
    setting = "API_READ_RATE"
