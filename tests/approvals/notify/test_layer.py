"""The consumer on the real Redis channel layer: many sockets opening at once on a small
connection pool, a Redis that is not there, and a layer that forgot its groups (FLUSHDB)."""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from approvals.notify.consumers import CLOSE_TRY_AGAIN_LATER, NotificationConsumer
from approvals.services.instances import instance_start
from tests.approvals.flows import NOW, publish, review_flow

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10
SOCKETS = 40


def _needs_redis() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a real Redis (REDIS_URL)")
    return url


@pytest.fixture
def redis_layer(settings) -> Iterator[str]:
    """The production channel layer (settings with REDIS_URL) under a key prefix of its own.
    Deleting that prefix's keys is what FLUSHDB does to this layer, without touching the keys
    other tests (a Celery broker, another layer) keep in the same Redis database."""
    url = _needs_redis()
    prefix = f"test-layer-{uuid.uuid4().hex[:10]}"
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    settings.NOTIFY_PUSH = "layer"
    yield prefix
    forget(url, prefix)


def forget(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            client.delete(key)
    finally:
        client.close()


def small_pool(settings, connections: int) -> None:
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["max_connections"] = connections
    settings.CHANNEL_LAYERS = layers


@pytest.fixture
def flow(db) -> None:
    publish(review_flow())


def connect(user) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(NotificationConsumer.as_asgi(), "/ws/notifications/")
    communicator.scope["user"] = user
    return communicator


async def receive_until(communicator: WebsocketCommunicator, kind: str) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        if message["type"] == kind:
            return message


def start(requester, title: str):
    return instance_start(
        definition_key="review", context={"title": title, "amount": 9}, actor=requester, now=NOW
    )


def test_many_sockets_opening_at_once_all_join_through_a_small_pool(
    redis_layer, settings, reviewer
):
    """A reconnect storm: more joins at once than the pool has connections wait for one
    instead of failing the handshake (redis-py's MaxConnectionsError)."""
    small_pool(settings, 2)

    async def scenario() -> None:
        sockets = [connect(reviewer) for _ in range(SOCKETS)]
        results = await asyncio.gather(*(s.connect(timeout=60) for s in sockets))
        assert all(connected for connected, _ in results)
        readies = await asyncio.gather(*(receive_until(s, "ready") for s in sockets))
        assert len(readies) == SOCKETS
        await asyncio.gather(*(s.disconnect() for s in sockets))

    async_to_sync(scenario)()


def test_a_join_that_keeps_failing_closes_with_try_again_later(settings, reviewer):
    """No Redis at the layer's address: the join is retried, then the connection is closed
    with 1013 ("try again later") instead of crashing, and live.js reconnects with its
    backoff."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()[1]
    settings.NOTIFY_PUSH = "layer"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "approvals.notify.layer.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{nobody}/0"}]},
        }
    }

    async def scenario() -> None:
        communicator = connect(reviewer)
        connected, _ = await communicator.connect(timeout=30)
        assert connected
        closed = await communicator.receive_output(timeout=30)
        assert closed == {"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER}

    async_to_sync(scenario)()


def test_after_the_layer_forgot_its_groups_a_tab_rejoins_on_its_next_ping_and_catches_up(
    redis_layer, flow, requester, reviewer, outsider
):
    url = os.environ["REDIS_URL"]

    async def scenario() -> None:
        mine, theirs = connect(reviewer), connect(outsider)
        for communicator in (mine, theirs):
            assert (await communicator.connect())[0]
            await receive_until(communicator, "ready")

        await asyncio.to_thread(forget, url, redis_layer)  # FLUSHDB, for this layer
        missed = await database_sync_to_async(start)(requester, "Laptop")

        await mine.send_json_to({"type": "ping"})
        caught = await receive_until(mine, "notification")
        assert caught["notification"]["instance"] == missed.pk
        assert caught["notification"]["kind"] == "task_new"
        assert (await receive_until(mine, "ready"))["unread"] == 1

        # Live again, not only caught up: the next change is pushed.
        pushed_instance = await database_sync_to_async(start)(requester, "Chair")
        pushed = await receive_until(mine, "notification")
        assert pushed["notification"]["instance"] == pushed_instance.pk
        assert pushed["unread"] == 2

        # The outsider's tab rejoins its own groups only: nothing of the reviewer's.
        await theirs.send_json_to({"type": "ping"})
        seen = []
        while True:
            message = await theirs.receive_json_from(timeout=TIMEOUT)
            seen.append(message["type"])
            if message["type"] == "pong":
                break
        assert "notification" not in seen
        for communicator in (mine, theirs):
            await communicator.disconnect()

    async_to_sync(scenario)()
