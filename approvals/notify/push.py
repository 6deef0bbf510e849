"""Browser push: notifications and "this changed" events to open pages, across processes.

Groups (Channels): `user.<id>` holds every tab of a user; `role.<group id>` every tab of a
member of that role; `instance.<id>` the tabs that asked to watch that request (after a
permission check). Notifications go to `user.<recipient>` only.

Two ways across processes (settings.NOTIFY_PUSH):

- "layer" (production, channels-redis): the process that committed the change (a web
  process, the Celery worker, a script) sends to the groups after commit.
- "poll" (the embedded default, whose in-memory layer reaches only its own process): each
  ASGI process runs one `PollRelay` while it has connections; it reads new Notification and
  OutboxMessage rows by id every NOTIFY_POLL_MS and sends them to its local groups. What the
  web process itself commits is also sent at once; consumers drop what they already sent.

Either way the rows are the source of truth: a browser that reconnects asks for what came
after the last id it saw (consumers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models import Q
from django.dispatch import receiver

from approvals.links import task_path
from approvals.models import Notification, OutboxMessage
from approvals.notify.facts import TOPICS, Facts, facts_for, unread_count
from approvals.notify.grouping import group_text

logger = logging.getLogger(__name__)

Event = tuple[list[str], dict[str, Any]]


class _PushLoop:
    """One event loop thread per process for what sync code sends to a shared (Redis) layer.

    `async_to_sync` outside an event loop runs each call on a new loop, and channels-redis keeps
    its connections per loop: every push would connect to Redis again (about 3.5 ms, measured
    by bench/transitions.py with REDIS_URL set). A loop that lives with the process keeps them.
    The in-memory layer of the embedded default reaches the consumers of its own loop only, so
    there pushes keep going through `async_to_sync`, which runs them on the server's loop.
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _pid = 0

    @classmethod
    def run(cls, coroutine: Any, *, timeout: float = 10.0) -> Any:
        with cls._lock:
            if cls._loop is None or cls._pid != os.getpid():  # none yet, or forked since
                cls._loop = asyncio.new_event_loop()
                cls._pid = os.getpid()
                threading.Thread(
                    target=cls._loop.run_forever, name="signoff-push", daemon=True
                ).start()
            loop = cls._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


def _run(func: Any, *args: Any) -> Any:
    """Call an async layer function from sync code (see _PushLoop)."""
    if settings.NOTIFY_PUSH == "poll":
        return async_to_sync(func)(*args)
    return _PushLoop.run(func(*args))


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def role_group(group_id: int) -> str:
    return f"role.{group_id}"


def instance_group(instance_id: int) -> str:
    return f"instance.{instance_id}"


def session_group(session_key: str) -> str | None:
    """The tabs of one signed-in session (closed when it signs out)."""
    if session_key and session_key.isalnum() and len(session_key) < 90:
        return f"session.{session_key}"
    return None


@receiver(user_logged_out)
def _signed_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    """Signing out closes the session's open connections (4401): they stop receiving."""
    session = getattr(request, "session", None)
    group = session_group(getattr(session, "session_key", None) or "")
    layer = get_channel_layer()
    if group is None or layer is None:
        return
    try:
        _run(layer.group_send, group, {"type": "notify.signed_out"})
    except Exception:
        logger.exception("could not close the signed-out session's connections")


def notification_path(n: Notification) -> str:
    return task_path(n.task_id) if n.task_id else "/notifications/"


def serialize(n: Notification, names: dict[int, str] | None = None) -> dict[str, Any]:
    """What the browser gets for one notification (docs/notifications.md)."""
    names = names or {}
    actor = names.get(n.actor_id) if n.actor_id else None
    if actor is None and n.actor_id and "actor" in n._state.fields_cache:
        actor = str(n.actor)
    return {
        "id": n.pk,
        "recipient": n.recipient_id,
        "kind": n.kind,
        "topic": n.topic,
        "text": n.text,
        "url": notification_path(n),
        "instance": n.instance_id,
        "task": n.task_id,
        "state": n.data.get("state"),
        "task_state": n.data.get("task_state"),
        "decision": n.data.get("decision"),
        "outcome": n.data.get("outcome"),
        "level": n.data.get("level"),
        "workflow": n.data.get("workflow", ""),
        # A toast of the same group shown a moment ago becomes "3 new tasks in Access request".
        "group": f"{n.kind}:{n.data.get('workflow', '')}",
        "group_text": group_text(n.kind, n.data.get("workflow", "")),
        "actor": actor or "",
        "actor_id": n.actor_id,
        "created_at": n.created_at.isoformat(),
        "read": n.read_at is not None,
    }


def events_for(messages: Iterable[OutboxMessage], facts: Facts) -> list[Event]:
    """Non-personal "this task/request changed" events for live pages, with the groups that
    may receive them: the request's watchers, the task's roles, its assignee and requester."""
    events: list[Event] = []
    for m in messages:
        payload = m.payload
        task_id = payload.get("task") if isinstance(payload.get("task"), int) else None
        task = facts.tasks.get(task_id) if task_id else None
        instance_id = task["instance_id"] if task else m.instance_id
        instance = facts.instances.get(instance_id)
        if instance is None:
            continue
        actor_id = facts.actor_of(m)
        groups = {instance_group(instance_id), user_group(instance["requester_id"])}
        role_ids: list[int] = []
        if task is not None:
            role_ids = facts.task_groups.get(task_id, [])
            if task["assignee_id"]:
                groups.add(user_group(task["assignee_id"]))
        elif m.topic == "task.cancelled":
            role_ids = facts.cancelled_groups.get((instance_id, payload.get("state", "")), [])
        groups |= {role_group(g) for g in role_ids}
        for key in ("to", "by", "previous_assignee"):
            if isinstance(payload.get(key), int):
                groups.add(user_group(payload[key]))
        event = {
            "id": m.pk,
            "topic": m.topic,
            "instance": instance_id,
            "instance_state": instance["state"],
            "instance_status": instance["status"],
            "task": task_id,
            "state": task["state"] if task else payload.get("state"),
            "task_status": task["status"] if task else None,
            "assignee_id": task["assignee_id"] if task else None,
            "assignee": facts.name(task["assignee_id"]) if task else "",
            "roles": [facts.group_names[g] for g in role_ids if g in facts.group_names],
            "actor_id": actor_id,
            "actor": facts.name(actor_id),
            "at": m.created_at.isoformat(),
        }
        for key in ("decision", "outcome", "from", "to", "level", "count", "error"):
            if key in payload and not isinstance(payload[key], dict | list):
                event[key] = payload[key]
        if m.topic in ("task.delegated", "task.reassigned") and isinstance(payload.get("to"), int):
            event["to_name"] = facts.name(payload["to"])
        events.append((sorted(groups), event))
    return events


async def send(notifications: list[dict[str, Any]], events: list[Event]) -> None:
    """To the groups: each group's messages in order, the groups at once (one round trip of
    the layer's each, not one after the other). A notification goes without its recipient's
    unread count: the connection that shows it counts it (consumers.py), so a change does not
    count the bells of people who may not be online."""
    layer = get_channel_layer()
    if layer is None:
        return
    by_group: dict[str, list[dict[str, Any]]] = {}
    for item in notifications:
        by_group.setdefault(user_group(item["recipient"]), []).append(
            {"type": "notify.push", "notification": item}
        )
    for groups, event in events:
        for group in groups:
            by_group.setdefault(group, []).append({"type": "notify.event", "event": event})

    async def deliver(group: str, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await layer.group_send(group, message)

    await asyncio.gather(*(deliver(group, messages) for group, messages in by_group.items()))


def publish(notifications: list[dict[str, Any]], events: list[Event]) -> None:
    """After commit: push to the groups. A failure here is logged, never raised: the change is
    committed and the rows let every browser catch up on its next (re)connection."""
    try:
        _run(send, notifications, events)
    except Exception:
        logger.exception("live push failed; browsers will catch up from the database")


def publish_unread(user_id: int) -> None:
    """Another tab marked notifications read: every tab's bell follows."""
    try:
        count = unread_count(user_id)
        layer = get_channel_layer()
        if layer is not None:
            _run(layer.group_send, user_group(user_id), {"type": "notify.unread", "unread": count})
    except Exception:
        logger.exception("unread count push failed")


# ----- the poll relay of the embedded default


class _Cursor:
    """The highest id seen, plus the ids below it not yet seen: with concurrent writers a lower
    id can commit after a higher one, so gaps are looked at again for a while."""

    GAP_SECONDS = 10.0
    MAX_GAPS = 1000

    def __init__(self, start: int) -> None:
        self.last = start
        self.gaps: dict[int, float] = {}

    def query(self) -> Q:
        now = time.monotonic()
        self.gaps = {i: t for i, t in self.gaps.items() if now - t < self.GAP_SECONDS}
        q = Q(pk__gt=self.last)
        if self.gaps:
            q |= Q(pk__in=list(self.gaps))
        return q

    def saw(self, ids: list[int]) -> None:
        seen = set(ids)
        for i in seen:
            self.gaps.pop(i, None)
        top = max(seen, default=self.last)
        if top > self.last:
            now = time.monotonic()
            for missing in range(self.last + 1, top):
                if missing not in seen and len(self.gaps) < self.MAX_GAPS:
                    self.gaps[missing] = now
            self.last = top


class PollRelay:
    """One per ASGI process (event loop) in "poll" mode, running while it has consumers."""

    _instances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollRelay] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self.users = 0
        self.task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    @classmethod
    def for_loop(cls) -> PollRelay:
        loop = asyncio.get_running_loop()
        relay = cls._instances.get(loop)
        if relay is None:
            relay = cls._instances[loop] = cls()
        return relay

    async def acquire(self) -> None:
        self.users += 1
        if self.task is None or self.task.done():
            self.ready = asyncio.Event()
            self.task = asyncio.create_task(self._run())
        await self.ready.wait()

    async def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    async def _run(self) -> None:
        try:
            notes, outbox = await database_sync_to_async(_heads)()
        except Exception:
            logger.exception("poll relay could not start")
            notes, outbox = 0, 0
        cursors = (_Cursor(notes), _Cursor(outbox))
        self.ready.set()
        interval = settings.NOTIFY_POLL_MS / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                notifications, events = await database_sync_to_async(_poll)(*cursors)
                await send(notifications, events)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("poll relay failed; trying again")
                await asyncio.sleep(min(5.0, interval * 4))


def _heads() -> tuple[int, int]:
    last_note = Notification.objects.order_by("-pk").values_list("pk", flat=True).first()
    last_message = OutboxMessage.objects.order_by("-pk").values_list("pk", flat=True).first()
    return last_note or 0, last_message or 0


def _poll(notes: _Cursor, outbox: _Cursor) -> tuple[list[dict[str, Any]], list[Event]]:
    rows = list(
        Notification.objects.filter(notes.query()).select_related("actor").order_by("pk")[:500]
    )
    notes.saw([n.pk for n in rows])
    messages = list(OutboxMessage.objects.filter(outbox.query()).order_by("pk")[:500])
    outbox.saw([m.pk for m in messages])
    messages = [m for m in messages if m.topic in TOPICS]
    events = events_for(messages, facts_for(messages, with_members=False)) if messages else []
    pushed = [serialize(n) for n in rows]
    return pushed, events
