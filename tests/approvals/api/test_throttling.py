"""Throttle counts while the shared cache (Redis) does not answer: the API keeps serving and
keeps counting, in the process's memory, and says so once in the log."""

from __future__ import annotations

import logging

import pytest

from approvals.api import throttling
from tests.approvals.outbox.test_redis_down import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_cache_down(settings, monkeypatch):
    settings.CACHES = {
        **settings.CACHES,
        "api": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        },
    }
    counts = throttling._Counts()
    monkeypatch.setattr(throttling, "counts", counts)
    return counts


def test_the_api_serves_and_throttles_while_the_shared_cache_is_down(
    api, reviewer, shared_cache_down, settings, caplog
):
    settings.API_READ_RATE = "3/minute"
    client = api(reviewer)
    client.raise_request_exception = False
    with caplog.at_level(logging.WARNING, logger="approvals.api.throttling"):
        statuses = [client.get("/api/v1/tasks/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    warnings = [r for r in caplog.records if r.name == "approvals.api.throttling"]
    assert len(warnings) == 1
    assert "the shared cache does not answer" in warnings[0].getMessage()


def test_counting_goes_back_to_the_shared_cache_when_it_answers(
    api, reviewer, shared_cache_down, settings, caplog
):
    client = api(reviewer)
    client.raise_request_exception = False
    assert client.get("/api/v1/tasks/").status_code == 200
    assert shared_cache_down.cache() is shared_cache_down.local
    # Redis is back (here: the in-memory shared cache of the test settings), and the retry
    # is due: the next request counts there again, and the log says so.
    settings.CACHES = {
        **settings.CACHES,
        "api": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "t2"},
    }
    shared_cache_down._retry_at = 0.0
    with caplog.at_level(logging.INFO, logger="approvals.api.throttling"):
        assert client.get("/api/v1/tasks/").status_code == 200
    assert shared_cache_down.cache() is not shared_cache_down.local
    assert "answers again" in caplog.text
