"""The notification WebSocket (/ws/notifications/): thin, like a view.

Signed-in users only (the session, through AuthMiddlewareStack; the origin is checked by
workflow_app/origins.py). A connection joins its user's group and its roles' groups; it may
watch a request it is allowed to see. On connect it sends what the browser missed since
`?since=<last notification id>`, then the unread count.

Joining is retried with backoff (a reconnect storm can keep the layer's connections busy); a
join that keeps failing closes with 1013, "try again later", which live.js does with its
backoff. A layer that forgot this connection's groups (Redis flushed or restarted) is noticed
on the browser's next ping: the connection joins again and sends what it missed since the last
notification id it sent.

Pushes are best effort (channels-redis drops messages for a process whose list is full), the
rows are not: every ping also sends the user's notifications that arrived since the check
before the previous one, once each, so a dropped push reaches the tab within two pings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from approvals import metrics
from approvals.models import Notification, WorkflowInstance
from approvals.notify import push
from approvals.notify.facts import unread_count
from approvals.permissions import can_view_instance

logger = logging.getLogger(__name__)


# Close codes (4000-4999 are the application's): the browser stops retrying on these.
CLOSE_UNAUTHENTICATED = 4401
# RFC 6455's "try again later": the browser reconnects after its backoff.
CLOSE_TRY_AGAIN_LATER = 1013
JOIN_ATTEMPTS = 5
JOIN_BACKOFF_SECONDS = 0.2  # doubled at each attempt, with full jitter
CATCH_UP_LIMIT = 200
MAX_WATCHED = 50
# channels-redis forgets group members after a day (group_expiry); rejoining hourly keeps a
# long-lived tab subscribed, and picks up role changes.
REJOIN_SECONDS = 3600


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            # Accepted first: a close before the accept reaches the browser as a failed
            # handshake (1006), not as this code, and it would retry for ever.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.joined: set[str] = set()
        self.watched: set[str] = set()
        self.recent: deque[tuple[str, int]] = deque(maxlen=1000)
        self.recent_set: set[tuple[str, int]] = set()
        self.relay: push.PollRelay | None = None
        self.last_id = 0
        # The user's newest notification id at each of the last two checks: a check reads from
        # the older one, so a notification committed after the previous check with an older id
        # (transactions commit out of id order) is still found.
        self.checked: deque[int] = deque(maxlen=2)
        # Accepted before joining: the server gives a handshake a few seconds (Daphne: 5) and a
        # storm of them queues on the layer and the database. Nothing is missed meanwhile: the
        # catch-up below runs after the join.
        await self.accept()
        self.counted = True
        metrics.WEBSOCKET_CONNECTIONS.inc()
        try:
            await self._join_groups()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            logger.warning("could not join the live groups; asking the browser to come back later")
            await self.close(code=CLOSE_TRY_AGAIN_LATER)
            return
        if settings.NOTIFY_PUSH == "poll":
            self.relay = push.PollRelay.for_loop()
            await self.relay.acquire()
        await self._catch_up(self._since())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            metrics.WEBSOCKET_CONNECTIONS.dec()
        for group in getattr(self, "joined", set()) | getattr(self, "watched", set()):
            await self.channel_layer.group_discard(group, self.channel_name)
        if getattr(self, "relay", None) is not None:
            await self.relay.release()
            self.relay = None

    # ----- from the browser

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            content = json.loads(text_data or "")
        except ValueError:
            await self.send_json({"type": "error", "error": "send JSON objects"})
            return
        if not isinstance(content, dict):
            await self.send_json({"type": "error", "error": "send JSON objects"})
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        kind = content.get("type")
        if kind == "ping":
            if await self._forgotten():
                await self._join_groups()
                for group in self.watched:
                    await self._group_add(group)
                await self._catch_up(self.last_id)
            elif time.monotonic() - self.joined_at > REJOIN_SECONDS:
                await self._join_groups()
            await self._send_dropped()
            await self.send_json({"type": "pong"})
        elif kind == "catch_up":
            await self._catch_up(_int(content.get("since")))
        elif kind in ("watch", "unwatch"):
            await self._watch(kind, content.get("instance"))
        else:
            await self.send_json({"type": "error", "error": f"unknown message type {kind!r}"})

    async def _watch(self, kind: str, instance_id: Any) -> None:
        instance_id = _int(instance_id)
        if instance_id is None:
            await self.send_json({"type": "error", "error": "instance must be an id"})
            return
        group = push.instance_group(instance_id)
        if kind == "unwatch":
            self.watched.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)
            return
        if len(self.watched) >= MAX_WATCHED:
            await self.send_json({"type": "error", "error": "watching too many requests"})
            return
        if not await database_sync_to_async(_may_view)(self.user, instance_id):
            # The same answer for "missing" and "not yours".
            await self.send_json(
                {"type": "error", "error": "no such request", "instance": instance_id}
            )
            return
        self.watched.add(group)
        await self._group_add(group)
        await self.send_json({"type": "watching", "instance": instance_id})

    # ----- from the groups

    async def notify_push(self, message: dict[str, Any]) -> None:
        item = message["notification"]
        if item.get("recipient") != self.user.pk:  # never someone else's, whatever the group
            return
        await self._send_notification(item, count=True)

    async def notify_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if self._seen("event", event["id"]):
            return
        await self.send_json({"type": "event", "event": event})

    async def notify_signed_out(self, message: dict[str, Any]) -> None:
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def notify_unread(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "unread", "unread": message["unread"]})

    # ----- helpers

    def _seen(self, kind: str, ident: int) -> bool:
        """Poll and direct pushes may both bring an item; send each once."""
        key = (kind, ident)
        if key in self.recent_set:
            return True
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(key)
        self.recent_set.add(key)
        return False

    async def _send_notification(self, item: dict[str, Any], *, count: bool = False) -> bool:
        """One notification, once; pushed ones come with this user's unread count. Whether it
        was sent now."""
        if self._seen("notification", item["id"]):
            return False
        self.last_id = max(self.last_id, item["id"])
        unread = await database_sync_to_async(unread_count)(self.user) if count else None
        await self.send_json({"type": "notification", "notification": item, "unread": unread})
        return True

    async def _send_dropped(self) -> None:
        """The notifications whose push never came, then the unread count if there were any."""
        since = self.checked[0] if self.checked else self.last_id
        items, _, unread, last = await database_sync_to_async(_missed)(self.user, since)
        self.checked.append(last)
        sent = [await self._send_notification(item) for item in items]
        if any(sent):
            await self.send_json({"type": "unread", "unread": unread})

    async def _join_groups(self) -> None:
        groups = {push.user_group(self.user.pk)}
        session = self.scope.get("session")
        session_group = push.session_group(getattr(session, "session_key", None) or "")
        if session_group:
            groups.add(session_group)
        groups |= {push.role_group(g) for g in await database_sync_to_async(_role_ids)(self.user)}
        for group in groups:
            await self._group_add(group)
        for group in self.joined - groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = groups
        self.joined_at = time.monotonic()

    async def _group_add(self, group: str) -> None:
        """Join, retrying a layer whose connections are all busy or that blinked."""
        for attempt in range(JOIN_ATTEMPTS):
            try:
                await self.channel_layer.group_add(group, self.channel_name)
                return
            except (RedisConnectionError, RedisTimeoutError, OSError):
                if attempt == JOIN_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0, JOIN_BACKOFF_SECONDS * 2**attempt))

    async def _forgotten(self) -> bool:
        """Whether the layer lost this connection's membership of its user's group."""
        group_has = getattr(self.channel_layer, "group_has", None)
        if group_has is None:  # a layer that cannot tell (in memory): it does not forget
            return False
        return not await group_has(push.user_group(self.user.pk), self.channel_name)

    def _since(self) -> int | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return _int((query.get("since") or [None])[0])

    async def _catch_up(self, since: int | None) -> None:
        items, more, unread, last = await database_sync_to_async(_missed)(self.user, since)
        for item in items:
            await self._send_notification(item)
        if not more:
            self.last_id = max(self.last_id, last)
            self.checked.append(last)
        await self.send_json({"type": "ready", "unread": unread, "last_id": last, "more": more})


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 2**63 else None


def _role_ids(user: Any) -> list[int]:
    return list(user.groups.values_list("pk", flat=True))


def _may_view(user: Any, instance_id: int) -> bool:
    instance = WorkflowInstance.objects.filter(pk=instance_id).first()
    return instance is not None and can_view_instance(user, instance)


def _missed(user: Any, since: int | None) -> tuple[list[dict[str, Any]], bool, int, int]:
    mine = Notification.objects.filter(recipient=user)
    last = mine.order_by("-pk").values_list("pk", flat=True).first() or 0
    items: list[dict[str, Any]] = []
    more = False
    if since is not None:
        rows = list(
            mine.filter(pk__gt=since).select_related("actor").order_by("pk")[: CATCH_UP_LIMIT + 1]
        )
        more = len(rows) > CATCH_UP_LIMIT
        items = [push.serialize(n) for n in rows[:CATCH_UP_LIMIT]]
    return items, more, unread_count(user), last
