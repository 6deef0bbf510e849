"""The notification consumer's units, through Channels' WebsocketCommunicator."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from approvals.models import Notification, NotificationKind
from approvals.notify import push as live
from approvals.notify.consumers import CLOSE_UNAUTHENTICATED, NotificationConsumer
from approvals.services.instances import instance_start
from approvals.services.task_work import task_claim, task_decide
from tests.approvals.flows import NOW, publish, review_flow
from workflow_app.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


@pytest.fixture
def flow(db):
    publish(review_flow())


def start(requester, title="Laptop"):
    return instance_start(
        definition_key="review", context={"title": title, "amount": 9}, actor=requester, now=NOW
    )


def connect(user, path="/ws/notifications/"):
    communicator = WebsocketCommunicator(NotificationConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    return communicator


async def receive_until(communicator, kind):
    while True:
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        if message["type"] == kind:
            return message


@pytest.fixture(params=["layer", "poll"])
def mode(request, settings):
    settings.NOTIFY_PUSH = request.param
    settings.NOTIFY_POLL_MS = 50
    return request.param


def test_anonymous_connections_are_closed_with_4401():
    """Accepted, then closed at once: a close before the accept reaches a browser as a failed
    handshake (1006), which live.js would retry forever; 4401 tells it to stop."""
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        communicator = connect(AnonymousUser())
        connected, _ = await communicator.connect()
        assert connected
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
        assert await communicator.receive_nothing(timeout=0.1)

    async_to_sync(scenario)()


def test_another_origin_is_refused_by_the_asgi_application(reviewer, settings):
    async def scenario():
        for origin in (b"https://evil.example", b"null", b"http://localhost"):
            communicator = WebsocketCommunicator(
                application, "/ws/notifications/", headers=[(b"origin", origin)]
            )
            connected, _ = await communicator.connect()
            assert not connected
        # The site's own origin without a session: past the origin check, then the anonymous
        # rule.
        communicator = WebsocketCommunicator(
            application, "/ws/notifications/", headers=[(b"origin", settings.SITE_URL.encode())]
        )
        assert (await communicator.connect())[0]
        closed = await communicator.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}

    async_to_sync(scenario)()


def test_a_new_task_reaches_its_reviewers_live_and_never_someone_else(
    mode, flow, requester, reviewer, outsider
):
    async def scenario():
        mine, theirs = connect(reviewer), connect(outsider)
        assert (await mine.connect())[0] and (await theirs.connect())[0]
        ready = await receive_until(mine, "ready")
        assert ready == {"type": "ready", "unread": 0, "last_id": 0, "more": False}
        await receive_until(theirs, "ready")

        instance = await database_sync_to_async(start)(requester)
        pushed = await receive_until(mine, "notification")
        note = pushed["notification"]
        assert note["kind"] == "task_new" and note["recipient"] == reviewer.pk
        assert note["instance"] == instance.pk and note["url"] == f"/tasks/{note['task']}/"
        assert note["text"] == "New task: Review for “Laptop”"
        assert pushed["unread"] == 1
        # The outsider is in no role of the task and not its requester: nothing at all.
        assert await theirs.receive_nothing(timeout=0.5)
        await mine.disconnect()
        await theirs.disconnect()

    async_to_sync(scenario)()


def test_role_members_see_the_task_leave_their_queue_when_someone_else_decides(
    mode, flow, requester, reviewer, reviewer2
):
    async def scenario():
        instance = await database_sync_to_async(start)(requester)
        task = await database_sync_to_async(lambda: instance.tasks.get())()
        other = connect(reviewer2)
        assert (await other.connect())[0]
        await receive_until(other, "ready")
        await database_sync_to_async(task_decide)(
            task_id=task.pk, event="APPROVE", actor=reviewer, now=NOW
        )
        seen = []
        while not any(e["topic"] == "task.decided" for e in seen):
            seen.append((await receive_until(other, "event"))["event"])
        decided = next(e for e in seen if e["topic"] == "task.decided")
        assert decided["task"] == task.pk and decided["instance"] == instance.pk
        assert decided["actor"] == "Rob Reviewer" and decided["decision"] == "APPROVE"
        assert decided["task_status"] == "done" and decided["roles"] == ["manager"]
        await other.disconnect()

    async_to_sync(scenario)()


def test_catch_up_sends_what_came_after_the_last_id_seen(flow, requester, reviewer):
    first = start(requester, "One")
    start(requester, "Two")
    start(requester, "Three")
    ids = list(
        Notification.objects.filter(recipient=reviewer).order_by("pk").values_list("pk", flat=True)
    )

    async def scenario():
        communicator = connect(reviewer, f"/ws/notifications/?since={ids[0]}")
        assert (await communicator.connect())[0]
        got = [
            (await communicator.receive_json_from(timeout=TIMEOUT))["notification"]["id"]
            for _ in ids[1:]
        ]
        assert got == ids[1:]
        ready = await communicator.receive_json_from(timeout=TIMEOUT)
        assert ready == {"type": "ready", "unread": 3, "last_id": ids[-1], "more": False}
        # Asking from further back sends only what this connection has not sent yet.
        await communicator.send_json_to({"type": "catch_up", "since": 0})
        again = await communicator.receive_json_from(timeout=TIMEOUT)
        assert again["notification"]["id"] == ids[0]
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "ready"
        await communicator.disconnect()

    async_to_sync(scenario)()
    assert first.pk


def test_watching_a_request_needs_the_right_to_see_it(mode, flow, requester, reviewer, outsider):
    instance = start(requester)
    task = instance.tasks.get()

    async def scenario():
        spy, owner = connect(outsider), connect(requester)
        for communicator in (spy, owner):
            assert (await communicator.connect())[0]
            await receive_until(communicator, "ready")
            await communicator.send_json_to({"type": "watch", "instance": instance.pk})
        assert await spy.receive_json_from(timeout=TIMEOUT) == {
            "type": "error",
            "error": "no such request",
            "instance": instance.pk,
        }
        assert await owner.receive_json_from(timeout=TIMEOUT) == {
            "type": "watching",
            "instance": instance.pk,
        }
        await database_sync_to_async(task_claim)(task_id=task.pk, actor=reviewer, now=NOW)
        claimed = (await receive_until(owner, "event"))["event"]
        assert claimed["topic"] == "task.claimed" and claimed["assignee"] == "Rob Reviewer"
        assert await spy.receive_nothing(timeout=0.5)
        await spy.disconnect()
        await owner.disconnect()

    async_to_sync(scenario)()


def test_poll_mode_delivers_what_another_process_committed(
    settings, monkeypatch, flow, requester, reviewer
):
    """The embedded default: the in-memory layer cannot reach across processes, so a change
    committed elsewhere (the Celery worker) arrives through this process's poll relay."""
    settings.NOTIFY_PUSH = "poll"
    settings.NOTIFY_POLL_MS = 50
    # As in another process: nothing is sent to this process's layer at commit.
    monkeypatch.setattr(live, "publish", lambda *args: None)

    async def scenario():
        communicator = connect(reviewer)
        assert (await communicator.connect())[0]
        await receive_until(communicator, "ready")
        await database_sync_to_async(start)(requester)
        pushed = await receive_until(communicator, "notification")
        assert pushed["notification"]["kind"] == "task_new" and pushed["unread"] == 1
        event = (await receive_until(communicator, "event"))["event"]
        assert event["topic"] == "task.created"
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_bad_messages_get_an_error_and_the_connection_stays(reviewer):
    async def scenario():
        communicator = connect(reviewer)
        assert (await communicator.connect())[0]
        await receive_until(communicator, "ready")
        await communicator.send_to(text_data="not json")
        assert (await communicator.receive_json_from())["error"] == "send JSON objects"
        await communicator.send_json_to(["a", "list"])
        assert (await communicator.receive_json_from())["error"] == "send JSON objects"
        await communicator.send_json_to({"type": "watch", "instance": "x"})
        assert (await communicator.receive_json_from())["error"] == "instance must be an id"
        await communicator.send_json_to({"type": "shout"})
        assert "unknown message type" in (await communicator.receive_json_from())["error"]
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from() == {"type": "pong"}
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_marking_read_updates_every_tab(settings, flow, requester, reviewer):
    from approvals.notify.services import notifications_mark_read

    settings.NOTIFY_PUSH = "layer"
    start(requester)

    async def scenario():
        communicator = connect(reviewer)
        assert (await communicator.connect())[0]
        assert (await receive_until(communicator, "ready"))["unread"] == 1
        await database_sync_to_async(notifications_mark_read)(actor=reviewer, ids=None, now=NOW)
        assert await receive_until(communicator, "unread") == {"type": "unread", "unread": 0}
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_the_poll_cursor_looks_again_at_ids_that_commit_out_of_order(monkeypatch):
    """With concurrent writers id 6 can commit after id 7: the relay must not skip it."""
    clock = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    cursor = live._Cursor(4)
    cursor.saw([5, 7])
    assert (cursor.last, set(cursor.gaps)) == (7, {6})
    assert "6" in str(cursor.query())
    cursor.saw([6])
    assert cursor.gaps == {}
    cursor.saw([10])
    assert set(cursor.gaps) == {8, 9}
    clock[0] += live._Cursor.GAP_SECONDS + 1  # a rolled-back transaction's id is given up
    cursor.query()
    assert cursor.gaps == {}


def test_signing_out_closes_that_session_s_connections_only(client, reviewer, settings):
    from django.test import Client

    other_tab_elsewhere = Client()
    for browser in (client, other_tab_elsewhere):
        browser.force_login(reviewer)

    def socket(browser):
        cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
        return WebsocketCommunicator(
            application,
            "/ws/notifications/",
            headers=[(b"cookie", cookie), (b"origin", settings.SITE_URL.encode())],
        )

    async def scenario():
        here, elsewhere = socket(client), socket(other_tab_elsewhere)
        for communicator in (here, elsewhere):
            assert (await communicator.connect())[0]
            await receive_until(communicator, "ready")
        await database_sync_to_async(client.logout)()
        closed = await here.receive_output(timeout=TIMEOUT)
        assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
        await elsewhere.send_json_to({"type": "ping"})
        assert await elsewhere.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
        await elsewhere.disconnect()

    async_to_sync(scenario)()


def test_a_push_that_never_came_reaches_the_tab_on_its_next_pings(flow, requester, reviewer):
    """Pushes may be dropped (a full channel); the rows are not. Each ping sends what arrived
    since the check before the previous one, so a notification that committed late with an
    older id (out of id order) is found too, and each is sent once."""
    instance = start(requester)

    def written(**fields):
        return Notification.objects.create(
            recipient=reviewer,
            kind=NotificationKind.TASK_NEW,
            topic="task.created",
            instance=instance,
            text="A task for you",
            created_at=NOW,
            **fields,
        ).pk

    async def ping_and_collect(communicator):
        await communicator.send_json_to({"type": "ping"})
        seen = []
        while (message := await communicator.receive_json_from(timeout=TIMEOUT))["type"] != "pong":
            seen.append(message)
        return seen

    async def scenario():
        communicator = connect(reviewer)
        assert (await communicator.connect())[0]
        await receive_until(communicator, "ready")

        # Two rows written without their push; the first id's row commits only later.
        late = await database_sync_to_async(written)()
        await database_sync_to_async(Notification.objects.filter(pk=late).delete)()
        dropped = await database_sync_to_async(written)()

        seen = await ping_and_collect(communicator)
        assert [m["notification"]["id"] for m in seen if m["type"] == "notification"] == [dropped]
        assert seen[-1] == {"type": "unread", "unread": 2}

        await database_sync_to_async(written)(pk=late)
        seen = await ping_and_collect(communicator)
        assert [m["notification"]["id"] for m in seen if m["type"] == "notification"] == [late]

        assert await ping_and_collect(communicator) == []  # nothing twice
        await communicator.disconnect()

    async_to_sync(scenario)()
